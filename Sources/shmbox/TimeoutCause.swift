import ShmMailbox
import ShmboxCLISupport

/// Error messages for timeouts that name the real cause, not just "timed out".
enum TimeoutCause {
    /// `seconds` as the messages show it ("0.2 s").
    static func seconds(_ seconds: Double?) -> String {
        guard let seconds else { return "" }
        return seconds == seconds.rounded() && seconds < 1e15 ? "\(Int(seconds)) s" : "\(seconds) s"
    }

    /// Why a send to `mailbox` ran out of time: a zero-capacity mailbox nobody received from,
    /// a synchronous send no receiver took, or a full mailbox.
    static func send(mailbox: Mailbox, timeout: Double?, synchronous: Bool) -> CLIFailure {
        let after = "timed out after \(seconds(timeout))"
        let message: String
        if mailbox.capacity.kind == .zero {
            message = "\(after): mailbox \"\(mailbox.name)\" has zero capacity and no receiver came to take the message; nothing was sent"
        } else if synchronous {
            message = "\(after): no receiver took the message of this synchronous send (--wait-received); nothing was sent"
        } else {
            message = "\(after): mailbox \"\(mailbox.name)\" stayed full (depth \(mailbox.depth) of capacity \(mailbox.capacity)); nothing was sent"
        }
        return CLIFailure(message, status: .temporaryFailure)
    }

    /// Why a send to endpoint `receiver` ran out of time.
    static func send(toEndpoint receiver: String, timeout: Double?) -> CLIFailure {
        CLIFailure("timed out after \(seconds(timeout)): the link to endpoint \"\(receiver)\" stayed full; nothing was sent",
                   status: .temporaryFailure)
    }

    /// Why a receive ran out of time: `source` (a mailbox or an endpoint) stayed empty.
    static func receive(source: String, timeout: Double?, received: Int, wanted: Int?) -> CLIFailure {
        let count = wanted.map { "; received \(received) of \($0) messages" } ?? ""
        return CLIFailure("timed out after \(seconds(timeout)): \(source) stayed empty\(count)",
                          status: .temporaryFailure)
    }
}
