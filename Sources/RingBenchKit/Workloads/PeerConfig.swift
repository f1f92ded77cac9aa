import Foundation

/// Everything a peer process needs, passed to it as one command-line argument
/// (`ringbench _peer <config>`): this struct as JSON.
struct PeerConfig: Equatable, Codable {
    enum Role: String, Codable {
        /// Sends a stream (throughput, fan-in).
        case sender
        /// Echoes every message back (latency).
        case echo
    }

    var role: Role
    var plan: LinkPlan
    var verify: VerifyMode
    /// Messages to send, warm-up included (senders); `Int.max` until `capSeconds` is up.
    var total: Int
    /// Messages before the timed part.
    var warmup: Int
    /// Seconds of timed sending after which the next message is the last (0: none).
    var capSeconds: Double
    /// This sender's index (fan-in).
    var index: Int
    /// The parent's pid: if it changes, the parent is gone.
    var parentPID: Int32
    var pinCPU: Int?
    /// Debugging: flip one byte of this message (by sequence number) before sending it.
    var corruptAt: Int?
    /// The parent's endpoint; the JSON form carries how many descriptors it has, which the peer
    /// inherits as 3, 4, … (`PeerEndpoint.childFD`).
    var endpoint: PeerEndpoint

    init(role: Role, plan: LinkPlan, verify: VerifyMode, total: Int, warmup: Int, capSeconds: Double, index: Int,
         parentPID: Int32, pinCPU: Int?, corruptAt: Int?, endpoint: PeerEndpoint) {
        self.role = role
        self.plan = plan
        self.verify = verify
        self.total = total
        self.warmup = warmup
        self.capSeconds = capSeconds
        self.index = index
        self.parentPID = parentPID
        self.pinCPU = pinCPU
        self.corruptAt = corruptAt
        self.endpoint = endpoint
    }

    private enum CodingKeys: String, CodingKey {
        case role, plan, verify, total, warmup, capSeconds, index, parentPID, pinCPU, corruptAt
        case endpoint, fds
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        role = try container.decode(Role.self, forKey: .role)
        plan = try container.decode(LinkPlan.self, forKey: .plan)
        verify = try container.decode(VerifyMode.self, forKey: .verify)
        total = try container.decode(Int.self, forKey: .total)
        warmup = try container.decode(Int.self, forKey: .warmup)
        capSeconds = try container.decode(Double.self, forKey: .capSeconds)
        index = try container.decode(Int.self, forKey: .index)
        parentPID = try container.decode(Int32.self, forKey: .parentPID)
        pinCPU = try container.decodeIfPresent(Int.self, forKey: .pinCPU)
        corruptAt = try container.decodeIfPresent(Int.self, forKey: .corruptAt)
        endpoint = PeerEndpoint()
        endpoint.values = try container.decode([String: String].self, forKey: .endpoint)
        endpoint.fds = (0..<(try container.decode(Int.self, forKey: .fds))).map { PeerEndpoint.childFD($0) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(role, forKey: .role)
        try container.encode(plan, forKey: .plan)
        try container.encode(verify, forKey: .verify)
        try container.encode(total, forKey: .total)
        try container.encode(warmup, forKey: .warmup)
        try container.encode(capSeconds, forKey: .capSeconds)
        try container.encode(index, forKey: .index)
        try container.encode(parentPID, forKey: .parentPID)
        try container.encodeIfPresent(pinCPU, forKey: .pinCPU)
        try container.encodeIfPresent(corruptAt, forKey: .corruptAt)
        try container.encode(endpoint.values, forKey: .endpoint)
        try container.encode(endpoint.fds.count, forKey: .fds)
    }

    /// Equal when their JSON forms are (the endpoint's descriptors count by number, not value).
    static func == (lhs: PeerConfig, rhs: PeerConfig) -> Bool {
        lhs.encoded() == rhs.encoded()
    }

    /// The JSON form (sorted keys, so equal configurations encode alike).
    func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every field is a string, a number or a dictionary of strings: encoding cannot fail.
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// Reads the JSON form; throws `BenchError.protocolViolation` saying what was wrong.
    init(decoding text: String) throws {
        do {
            self = try JSONDecoder().decode(PeerConfig.self, from: Data(text.utf8))
        } catch {
            throw BenchError.protocolViolation("bad peer configuration: \(error)")
        }
    }
}
