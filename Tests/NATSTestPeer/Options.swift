import ShmMailbox
import ShmMailboxNATS

/// Remote mailbox options from `KEY=VALUE` arguments: `capacity=N|unbounded|zero`, `replicas=N`,
/// `redelivery=MS`, `maxbytes=N`, `size=N` (the largest message), `policy=competing|exclusive|pair|roundRobin`,
/// `ownership=none|process|system`. The rest are the defaults.
func mailboxOptions(_ arguments: [String]) -> RemoteMailboxOptions {
    var options = RemoteMailboxOptions()
    for argument in arguments {
        let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { fail("option \(argument): not KEY=VALUE") }
        let (key, value) = (parts[0], parts[1])
        switch key {
        case "capacity":
            switch value {
            case "unbounded": options.capacity = .unbounded
            case "zero": options.capacity = .zero
            default: options.capacity = .bounded(number(argument, value))
            }
        case "replicas": options.replicas = number(argument, value)
        case "redelivery": options.redeliveryDelay = .milliseconds(number(argument, value))
        case "maxbytes": options.maxBytes = number(argument, value)
        case "size": options.maxMessageSize = number(argument, value)
        case "policy":
            guard let policy = MailboxOptions.ReceiverPolicy(rawValue: value) else { fail("option \(argument): no such policy") }
            options.receiverPolicy = policy
        case "ownership":
            guard let ownership = MailboxOptions.Ownership(rawValue: value) else { fail("option \(argument): no such ownership") }
            options.ownership = ownership
        default:
            fail("option \(argument): unknown")
        }
    }
    return options
}

private func number(_ argument: String, _ value: String) -> Int {
    guard let number = Int(value) else { fail("option \(argument): not a number") }
    return number
}

/// A remote mailbox error's case name, for a test to match (`ERROR receiverBusy …`).
func errorCase(_ error: any Error) -> String {
    guard let error = error as? RemoteMailboxError else { return "other" }
    switch error {
    case .timedOut: return "timedOut"
    case .deliveryUnconfirmed: return "deliveryUnconfirmed"
    case .closed: return "closed"
    default: return Mirror(reflecting: error).children.first?.label ?? "unknown"
    }
}
