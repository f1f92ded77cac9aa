import ArgumentParser
import RingBenchCLI
import RingBenchNATS

/// `ringbench-nats`: ringbench's command line with the NATS transports registered too. Its
/// peers are this executable started again, so they register them as well.
@main
struct RingBenchNATSCommand: ParsableCommand {
    static let configuration = RingBenchCLI.configuration(
        commandName: "ringbench-nats",
        abstract: "Measures ShmMailbox, the kernel's links and NATS JetStream (plain libnats and RemoteMailbox) side by side.",
        transports: NATSTransports.summary)

    static func main() {
        NATSTransports.register()
        main(nil)
    }
}
