import ArgumentParser
import RingBenchCLI

/// `ringbench`: the built-in transports only, so it builds and runs without libnats (the NATS
/// transports are in `ringbench-nats`).
@main
struct RingBenchCommand: ParsableCommand {
    static let configuration = RingBenchCLI.configuration(
        commandName: "ringbench",
        abstract: "Measures ShmMailbox against other ways local processes pass messages.",
        transports: "The NATS transports (nats, nats-raw) are in ringbench-nats, which needs libnats-dev.")
}
