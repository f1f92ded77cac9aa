import ArgumentParser
import Foundation
import RingBenchKit

/// The `ringbench` command line, shared by the executables that run it: `ringbench` (the built-in
/// transports) and `ringbench-nats` (the same, plus the NATS transports it registers first). Each
/// executable has its own root command, made with `configuration(commandName:abstract:transports:)`.
public enum RingBenchCLI {
    /// The subcommands: latency, throughput, fanin, compare, idle and the hidden `_peer`.
    public static var subcommands: [any ParsableCommand.Type] {
        [Latency.self, Throughput.self, FanIn.self, Compare.self, IdleCommand.self, PeerCommand.self]
    }

    /// The root command's configuration; `transports` describes the transports the executable
    /// adds to the built-in ones (empty for `ringbench`).
    public static func configuration(commandName: String, abstract: String, transports: String = "") -> CommandConfiguration {
        CommandConfiguration(
            commandName: commandName,
            abstract: abstract,
            discussion: """
            Every run uses real processes: \(commandName) starts itself again (/proc/self/exe) as the peer. \
            Transports: shm (ShmMailbox one-to-one ring), shm-shared (shared ring), shm-endpoint (ShmMailbox \
            endpoints: send to a name, receive from anyone), shm-async (the one-to-one ring through the async \
            API: await where a side must wait), uds-stream, uds-dgram, \
            uds-seqpacket (Unix domain sockets), pipe, mqueue (POSIX message queues), tcp (127.0.0.1, \
            TCP_NODELAY), and four C floors that show the least such work costs: c-ring (a busy-polling \
            single-producer, single-consumer ring publishing each message on its own; no fan-in), c-slots \
            (a busy-polling multi-producer, multi-consumer queue with a sequence word per slot, the design \
            of shm-shared's ring; fan-in too), c-spin (ping-pong on one cache line, both sides spinning) \
            and c-futex (bare futex ping-pong); the last two measure latency only.\(transports.isEmpty ? "" : " " + transports) Every message received \
            is verified (sequence number; with --verify checksum \
            every byte); a failed verification stops the run with a non-zero exit. Messages a transport \
            cannot carry whole are split into chunks (the report's note says so, and which limits were \
            raised). Results come with the machine's facts.
            """,
            subcommands: subcommands
        )
    }

    /// The name errors are reported under: the executable's own name.
    static var commandName: String {
        let name = (CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent }) ?? ""
        return name.isEmpty || name == "exe" ? "ringbench" : name
    }

    /// The transports `--transport` accepts in this process, for the help text.
    static var transportList: String {
        RingBench.transportNames.joined(separator: ", ") + " (c-ring: one sender; c-spin and c-futex: latency only)"
    }

    /// The transport called `name`, or a validation error saying what is accepted (and, for a
    /// NATS transport asked of `ringbench`, where the NATS transports are).
    static func transport(named name: String) throws -> TransportKind {
        if let transport = TransportKind(rawValue: name) { return transport }
        if name == "nats" || name.hasPrefix("nats-") {
            throw ValidationError("""
            --transport \(name): the NATS transports (nats, nats-raw; nats-bridge to come) live in `ringbench-nats`, \
            which links libnats (apt install libnats-dev) and starts nats-server (apt install nats-server); it takes \
            the same subcommands and options, e.g. \
            swift run -c release ringbench-nats compare --transport shm --transport tcp --transport nats-raw --transport nats
            """)
        }
        throw ValidationError("--transport \(name): expected one of \(RingBench.transportNames.joined(separator: ", "))")
    }
}
