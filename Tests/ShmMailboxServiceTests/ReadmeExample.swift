// The README's "Running a mailbox as a service" example, compiled with the tests;
// `ReadmeExampleTests` checks that the README shows exactly the code below.
import ServiceLifecycle
import ShmMailbox
import ShmMailboxService

/// Handles the messages of mailbox `name` until SIGTERM or SIGINT.
func serve(_ name: String) async throws {
    let service = MailboxService(name) { message in
        print("\(message.string) from process \(message.sender)")
    }
    let group = ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint])
    try await group.run()
}
