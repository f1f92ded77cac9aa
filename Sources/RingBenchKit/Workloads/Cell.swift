#if canImport(Glibc)
import Glibc
#endif

/// One measurement: one workload over one transport at one size, in fresh processes.
struct Cell {
    var workload: Workload
    var transport: TransportKind
    var size: Int
    /// Timed messages (round trips for latency; all senders together for fan-in); nil: until the cap.
    var count: Int?
    /// Untimed messages first (per sender).
    var warmup: Int
    /// Seconds after which the timed part ends even if `count` is not reached.
    var capSeconds: Double?
    var senders: Int
    var strategy: WaitChoice
    var verify: VerifyMode
    var batch: Int
    /// Messages per ring (`--capacity`); nil: the links' own choice.
    var capacity: Int?
    /// CPU for the parent (first) and the peers (the rest, round robin); empty: no pinning.
    var pin: [Int]
    var corruptAt: Int?

    var shape: LinkShape {
        switch workload {
        case .latency: return .pingPong
        case .throughput: return .oneWay
        case .fanin: return .fanIn(senders: senders)
        }
    }

    var plan: LinkPlan {
        LinkPlan(transport: transport, size: size, shape: shape, strategy: strategy, batch: batch, capacity: capacity)
    }

    private func peerCPU(_ index: Int) -> Int? {
        guard !pin.isEmpty else { return nil }
        return pin.count == 1 ? pin[0] : pin[1 + index % (pin.count - 1)]
    }

    /// Messages each sender sends in its timed part.
    private func perSender(_ timed: Int?) -> Int? {
        timed.map { max(1, ($0 + senders - 1) / senders) }
    }

    /// Runs the cell once and returns its row (`runs` 1).
    func run() throws -> BenchmarkResult {
        let plan = self.plan
        let setup = try transport.setUp(plan)
        defer { setup.tearDown() }
        var peers: [PeerProcess] = []
        defer { for peer in peers { peer.kill() } }

        let timedPerSender = workload == .fanin ? perSender(count) : count
        for index in 0..<shape.peers {
            let endpoint = try setup.endpoint(forPeer: index)
            let config = PeerConfig(
                role: workload == .latency ? .echo : .sender, plan: plan, verify: verify,
                total: workload == .latency ? Int.max : timedPerSender.map { warmup + $0 } ?? Int.max,
                warmup: warmup, capSeconds: workload == .latency ? 0 : capSeconds ?? 0, index: index,
                parentPID: getpid(), pinCPU: peerCPU(index), corruptAt: corruptAt, endpoint: endpoint)
            peers.append(try PeerProcess.spawn(config: config, fds: endpoint.fds))
            setup.peerSpawned(index)
        }
        let peerList = peers
        let watchdog = Watchdog {
            for peer in peerList where peer.hasExited {
                throw BenchError.peerFailed("process \(peer.pid) exited in the middle of the run")
            }
        }
        do {
            let link = try setup.parentLink(watchdog: watchdog)
            defer { link.close() }
            for peer in peers {
                let line = try peer.readLine(timeout: 60, waitingFor: "READY")
                guard line == "READY" else { throw BenchError.protocolViolation("peer \(peer.pid) said \"\(line)\" instead of READY") }
            }
            setup.peersReady()
            for peer in peers { try peer.tell("GO") }
            let codec = MessageCodec(size: size, mode: verify)
            var row: BenchmarkResult
            switch workload {
            case .latency:
                let trips = try Measure.pingPong(link, codec: codec, warmup: warmup, count: count, capSeconds: capSeconds)
                let peer = try peerFigures(peers)
                guard peer.messages == trips.messages else {
                    throw BenchError.protocolViolation("the peer echoed \(peer.messages) timed messages, this side timed \(trips.messages)")
                }
                let rate = trips.seconds > 0 ? Double(trips.messages) / trips.seconds : 0
                row = BenchmarkResult(
                    transport: transport.reportName(strategy: strategy), workload: workload.rawValue, size: size, runs: 1,
                    messages: trips.messages, seconds: trips.seconds, msgsPerSec: rate, bytesPerSec: rate * Double(size),
                    p50Ns: trips.p50, p90Ns: trips.p90, p99Ns: trips.p99, p999Ns: trips.p999, maxNs: trips.max, meanNs: trips.mean,
                    cpuSenderS: trips.cpuSeconds, cpuReceiverS: peer.cpu, verified: verify.rawValue, note: "")
            case .throughput, .fanin:
                let stream = try Measure.receiveStreams(link, codec: codec, senders: shape.peers, warmup: warmup, batch: batch)
                let peer = try peerFigures(peers)
                guard peer.messages == stream.messages else {
                    throw BenchError.protocolViolation("the senders sent \(peer.messages) timed messages, \(stream.messages) arrived")
                }
                let rate = stream.seconds > 0 ? Double(stream.messages) / stream.seconds : 0
                row = BenchmarkResult(
                    transport: transport.reportName(strategy: strategy), workload: workload.rawValue, size: size, runs: 1,
                    messages: stream.messages, seconds: stream.seconds, msgsPerSec: rate, bytesPerSec: rate * Double(size),
                    cpuSenderS: peer.cpu, cpuReceiverS: stream.cpuSeconds, verified: verify.rawValue, note: "")
            }
            row.note = note(setup)
            if let server = setup.serverCPUSeconds() {
                // Warm-up included: the setup counts from the GO (peersReady) to here.
                let perMessage = row.messages > 0 ? server * 1e9 / Double(row.messages) : 0
                row.note += "; server CPU \(HumanFormat.significant(server)) s, \(HumanFormat.duration(ns: perMessage))/msg (warm-up included)"
            }
            for peer in peers {
                let status = peer.finish(timeout: 10)
                guard status == 0 else {
                    let text = peer.errorText()
                    throw BenchError.peerFailed(text.isEmpty ? "process \(peer.pid) \(PeerProcess.describe(status))" : text)
                }
            }
            return row
        } catch {
            throw explain(error, peers)
        }
    }

    /// The peers' RESULT lines: their CPU seconds added up.
    private func peerFigures(_ peers: [PeerProcess]) throws -> (cpu: Double, messages: Int) {
        var cpu = 0.0, messages = 0
        for peer in peers {
            let line = try peer.readLine(timeout: 60, waitingFor: "RESULT")
            let fields = line.split(separator: " ")
            guard fields.count == 4, fields[0] == "RESULT", let seconds = Double(fields[1]), let count = Int(fields[3]) else {
                throw BenchError.protocolViolation("peer \(peer.pid) said \"\(line)\" instead of RESULT")
            }
            cpu += seconds
            messages += count
        }
        return (cpu, messages)
    }

    private func note(_ setup: any TransportSetup) -> String {
        var parts = [setup.note]
        if case .fanIn(let senders) = shape { parts.append("\(senders) senders") }
        parts.append("warmup \(warmup)\(shape.peers > 1 ? " per sender" : "")")
        if let capSeconds { parts.append("time cap \(Self.seconds(capSeconds))") }
        return parts.joined(separator: "; ")
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    /// The error to report for a failed run: the parent's own verification failure first, else
    /// what a failed peer said (the parent's error is then usually just "connection closed"),
    /// else the parent's error.
    private func explain(_ error: Error, _ peers: [PeerProcess]) -> Error {
        if let bench = error as? BenchError, case .verificationFailed = bench { return bench }
        var complaints: [String] = []
        for peer in peers {
            // A peer that failed on its own has exited already or exits at once; a healthy one
            // waits for our input to close, which `finish` does.
            let status = peer.finish(timeout: 1)
            let text = peer.errorText()
            if !text.isEmpty {
                complaints.append(text)
            } else if status != 0, peer.hasExited, (error as? BenchError)?.isPeerLoss == true {
                complaints.append("process \(peer.pid) \(PeerProcess.describe(status))")
            }
        }
        if !complaints.isEmpty {
            let peerText = complaints.joined(separator: "; ")
            if let bench = error as? BenchError, bench.isPeerLoss { return BenchError.peerFailed(peerText) }
            return BenchError.peerFailed("\(peerText) (and here: \(error))")
        }
        return error
    }
}
