import ArgumentParser
import ShmMailbox
import ShmboxCLISupport

/// `shmbox grant NAME PID`: lets a process receive from a system-owned mailbox.
struct GrantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant",
        abstract: "Let process PID receive from a system-owned mailbox (run as its owner)."
    )

    @Argument(help: "The mailbox name.")
    var name: String

    @Argument(help: "The process to grant the receive right to.")
    var pid: Int32

    func run() throws {
        try reportingMailboxErrors {
            try Mailbox.open(name).grantReceive(to: pid)
        }
    }
}

/// `shmbox transfer NAME PID`: hands a system-owned mailbox to another process.
struct TransferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer",
        abstract: "Make process PID the owner of a system-owned mailbox (run as its owner)."
    )

    @Argument(help: "The mailbox name.")
    var name: String

    @Argument(help: "The new owner.")
    var pid: Int32

    func run() throws {
        try reportingMailboxErrors {
            try Mailbox.open(name).transferOwnership(to: pid)
        }
    }
}

/// `shmbox reclaim NAME PID`: hands a system-owned mailbox whose owner died to process PID.
struct ReclaimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reclaim",
        abstract: "Make process PID the owner of a system-owned mailbox whose owner died without handing it on.",
        discussion: "Only a process of the user that owns the mailbox's segment may reclaim it (Mailbox.reclaimOwnership). The command reclaims it and transfers it to PID at once."
    )

    @Argument(help: "The mailbox name.")
    var name: String

    @Argument(help: "The new owner (a running process).")
    var pid: Int32

    func run() throws {
        try reportingMailboxErrors {
            let mailbox = try Mailbox.open(name)
            try mailbox.reclaimOwnership()
            try mailbox.transferOwnership(to: pid)
            printLine("owner \(pid)")
        }
    }
}

/// `shmbox gc`: removes process-owned mailboxes whose owner has gone, and endpoint segments and
/// links nobody uses any more.
struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove process-owned mailboxes whose owner has exited or died, and abandoned endpoints and links.",
        discussion: """
            Prints the name of each mailbox it removed, one per line; then each endpoint segment \
            no live process holds (as @NAME) and each link whose two endpoints are both gone \
            (as @SENDER>RECEIVER). Messages still waiting on a removed link are lost.
            """
    )

    func run() throws {
        try reportingMailboxErrors {
            for name in try Mailbox.removeAbandoned() { printLine(name) }
            for object in try Endpoint.removeAbandoned() { printLine(object) }
        }
    }
}
