/// Everything a peer process needs, passed to it as one command-line argument
/// (`ringbench _peer <config>`): `key=value` pairs separated by `;`.
struct PeerConfig: Equatable {
    enum Role: String {
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
    var endpoint: PeerEndpoint

    static func == (lhs: PeerConfig, rhs: PeerConfig) -> Bool {
        lhs.encoded() == rhs.encoded()
    }

    func encoded() -> String {
        var pairs: [(String, String)] = [
            ("role", role.rawValue), ("transport", plan.transport.rawValue), ("size", String(plan.size)),
            ("shape", Self.encode(plan.shape)), ("strategy", plan.strategy.rawValue), ("batch", String(plan.batch)),
            ("verify", verify.rawValue), ("total", String(total)), ("warmup", String(warmup)),
            ("cap", String(capSeconds)), ("index", String(index)), ("parent", String(parentPID)),
            ("fds", String(endpoint.fds.count)),
        ]
        if let pinCPU { pairs.append(("pin", String(pinCPU))) }
        if let corruptAt { pairs.append(("corrupt", String(corruptAt))) }
        for key in endpoint.values.keys.sorted() { pairs.append(("ep." + key, endpoint.values[key]!)) }
        return pairs.map { "\($0.0)=\($0.1)" }.joined(separator: ";")
    }

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

    init(decoding text: String) throws {
        var values: [String: String] = [:]
        for pair in text.split(separator: ";") {
            guard let equals = pair.firstIndex(of: "=") else { throw Self.bad("\(pair)") }
            values[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        func string(_ key: String) throws -> String {
            guard let value = values[key] else { throw Self.bad("missing \(key)") }
            return value
        }
        func int(_ key: String) throws -> Int {
            guard let value = Int(try string(key)) else { throw Self.bad(key) }
            return value
        }
        guard let role = Role(rawValue: try string("role")),
              let transport = TransportKind(rawValue: try string("transport")),
              let strategy = WaitChoice(rawValue: try string("strategy")),
              let verify = VerifyMode(rawValue: try string("verify")),
              let shape = Self.decodeShape(try string("shape")),
              let cap = Double(try string("cap")),
              let parent = Int32(try string("parent"))
        else { throw Self.bad(text) }
        var endpoint = PeerEndpoint()
        for (key, value) in values where key.hasPrefix("ep.") { endpoint[String(key.dropFirst(3))] = value }
        endpoint.fds = (0..<(try int("fds"))).map { PeerEndpoint.childFD($0) }
        self.init(role: role,
                  plan: LinkPlan(transport: transport, size: try int("size"), shape: shape, strategy: strategy, batch: try int("batch")),
                  verify: verify, total: try int("total"), warmup: try int("warmup"), capSeconds: cap, index: try int("index"),
                  parentPID: parent, pinCPU: values["pin"].flatMap { Int($0) }, corruptAt: values["corrupt"].flatMap { Int($0) },
                  endpoint: endpoint)
    }

    private static func bad(_ what: String) -> BenchError {
        .protocolViolation("bad peer configuration: \(what)")
    }

    private static func encode(_ shape: LinkShape) -> String {
        switch shape {
        case .oneWay: return "oneway"
        case .pingPong: return "pingpong"
        case .fanIn(let senders): return "fanin:\(senders)"
        }
    }

    private static func decodeShape(_ text: String) -> LinkShape? {
        switch text {
        case "oneway": return .oneWay
        case "pingpong": return .pingPong
        default:
            guard text.hasPrefix("fanin:"), let senders = Int(text.dropFirst(6)) else { return nil }
            return .fanIn(senders: senders)
        }
    }
}
