import Testing

/// `ringbench` (built without libnats) points to `ringbench-nats` for the NATS transports.
struct CommandLineTests {
    @Test(arguments: ["nats", "nats-raw", "nats-bridge"])
    func natsTransportsPointToRingbenchNATS(_ name: String) throws {
        let outcome = try RingbenchProcess.run(["throughput", "--transport", name])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("ringbench-nats"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("libnats-dev"), "\(outcome.stderr)")
    }
}
