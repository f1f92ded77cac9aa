#if canImport(Glibc)
import Glibc
#endif

/// A peer process as the parent sees it: ringbench re-executed (/proc/self/exe) with the hidden
/// `_peer` subcommand. Its standard input, output and error are pipes: the parent writes `GO`
/// when every peer is ready and closes the pipe when the run is over; the peer writes `READY`
/// once connected and `RESULT <cpu seconds> <seconds> <messages>` when done; errors go to
/// standard error.
final class PeerProcess {
    let pid: pid_t
    private var stdinFD: Int32
    private var stdoutFD: Int32
    private var stderrFD: Int32
    private var pending: [UInt8] = []
    private var status: Int32?

    private init(pid: pid_t, stdinFD: Int32, stdoutFD: Int32, stderrFD: Int32) {
        self.pid = pid
        self.stdinFD = stdinFD
        self.stdoutFD = stdoutFD
        self.stderrFD = stderrFD
    }

    deinit {
        kill()
        Sys.close(stdinFD)
        Sys.close(stdoutFD)
        Sys.close(stderrFD)
    }

    /// Starts `/proc/self/exe _peer <config>`; `fds` become the peer's descriptors 3, 4, ….
    static func spawn(config: PeerConfig, fds: [Int32]) throws -> PeerProcess {
        var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1], errors: [Int32] = [-1, -1]
        try Sys.makePipe(&input)
        try Sys.makePipe(&output)
        try Sys.makePipe(&errors)
        defer {
            Sys.close(input[0])
            Sys.close(output[1])
            Sys.close(errors[1])
        }
        // Every descriptor here is close-on-exec; dup2 makes the peer's copies inheritable. The
        // sources are first moved above every source and target so no dup2 overwrites a source.
        let sources = [input[0], output[1], errors[1]] + fds
        let targets: [Int32] = [0, 1, 2] + fds.indices.map { PeerEndpoint.childFD($0) }
        let staging = max(sources.max()!, targets.max()!) + 1
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (offset, source) in sources.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, source, staging + Int32(offset))
        }
        for (offset, target) in targets.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, staging + Int32(offset), target)
            posix_spawn_file_actions_addclose(&actions, staging + Int32(offset))
        }
        let path = "/proc/self/exe"
        let arguments = [path, "_peer", config.encoded()]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, &argv, environ)
        guard rc == 0 else {
            Sys.close(input[1])
            Sys.close(output[0])
            Sys.close(errors[0])
            throw BenchError.system(operation: "posix_spawn(\(path))", errno: rc)
        }
        return PeerProcess(pid: pid, stdinFD: input[1], stdoutFD: output[0], stderrFD: errors[0])
    }

    // MARK: Control lines

    func tell(_ line: String) throws {
        guard Sys.writeAll(stdinFD, line + "\n") else {
            throw BenchError.peerFailed("process \(pid) stopped reading its control pipe")
        }
    }

    /// The next line the peer writes on standard output, waiting at most `timeout` seconds.
    func readLine(timeout: Double, waitingFor what: String) throws -> String {
        let deadline = Sys.nanos() + UInt64(timeout * 1e9)
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            let now = Sys.nanos()
            guard now < deadline else { throw BenchError.timedOut("no \(what) from peer process \(pid) within \(Int(timeout)) s") }
            var descriptor = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(1000, (deadline - now) / 1_000_000 + 1)))
            if ready < 0 && errno != EINTR { throw Sys.failure("poll(peer output)") }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 512)
            let n = chunk.withUnsafeMutableBytes { raw in Sys.retrying { read(stdoutFD, raw.baseAddress, raw.count) } }
            if n <= 0 { throw BenchError.peerFailed("process \(pid) exited before sending its \(what)") }
            pending += chunk[0..<n]
        }
    }

    /// Whether the peer has exited (its standard output, which only it holds, hung up). Cheap:
    /// the links' watchdogs ask this about once a second while they wait.
    var hasExited: Bool {
        if status != nil { return true }
        var descriptor = pollfd(fd: stdoutFD, events: 0, revents: 0)
        return poll(&descriptor, 1, 0) > 0 && descriptor.revents & Int16(POLLHUP | POLLERR) != 0
    }

    // MARK: Ending

    /// Closes the control pipe (the peer's cue to exit) and waits up to `timeout` seconds for the
    /// peer to exit; kills it after that. Returns its wait status.
    @discardableResult
    func finish(timeout: Double) -> Int32 {
        Sys.close(stdinFD)
        stdinFD = -1
        if let status { return status }
        let deadline = Sys.nanos() + UInt64(timeout * 1e9)
        var result: Int32 = 0
        while true {
            let rc = waitpid(pid, &result, WNOHANG)
            if rc == pid { break }
            if rc < 0 && errno != EINTR {
                result = -1
                break
            }
            if Sys.nanos() >= deadline {
                Glibc.kill(pid, SIGKILL)
                _ = Sys.retrying { waitpid(pid, &result, 0) }
                break
            }
            usleep(2_000)
        }
        status = result
        return result
    }

    /// Kills the peer (if still running) and reaps it.
    func kill() {
        guard status == nil else { return }
        Glibc.kill(pid, SIGKILL)
        var result: Int32 = 0
        _ = Sys.retrying { waitpid(pid, &result, 0) }
        status = result
    }

    /// What the peer wrote on standard error (after it exited), trimmed.
    func errorText() -> String {
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            var descriptor = pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { break }
            let n = chunk.withUnsafeMutableBytes { raw in Sys.retrying { read(stderrFD, raw.baseAddress, raw.count) } }
            if n <= 0 { break }
            text += chunk[0..<n]
        }
        return String(decoding: text, as: UTF8.self).trimmingSpaces
    }

    /// "exited with status 1", "killed by signal 9".
    static func describe(_ status: Int32) -> String {
        if status & 0x7F == 0 { return "exited with status \((status >> 8) & 0xFF)" }
        return "killed by signal \(status & 0x7F)"
    }
}
