/// Removing what endpoints leave behind (`shmbox gc`).
extension Endpoint {
    /// Removes every endpoint segment (`/shmmb.@NAME`) that no live process holds, then every
    /// link (`/shmmb.@P>Q`) whose two endpoints are both gone (no segment, or one nobody
    /// holds). Returns the object names removed, without the `shmmb.` prefix (`@P`, `@P>Q`).
    /// Segments that cannot be opened (damaged, not permitted) are left alone, and so are links
    /// to or from them. Messages still waiting on a removed link are lost.
    public static func removeAbandoned() throws(MailboxError) -> [String] {
        let objects = try SharedSegment.objectNames().compactMap(EndpointName.parse(objectName:))
        var removed: [String] = []
        // Endpoints that stay: held by a live process, or not readable.
        var present = Set<String>()
        for case .endpoint(let name) in objects {
            let holder: UInt64
            do {
                holder = try EndpointSegment.open(name).currentHolder
            } catch .notFound {
                continue
            } catch {
                present.insert(name)
                continue
            }
            if holder != 0 && ProcessIdentity.isAlive(packed: holder) {
                present.insert(name)
            } else if (try? SharedSegment.unlink(EndpointName.segment(name))) != nil {
                removed.append("@" + name)
            }
        }
        for case .link(let sender, let receiver) in objects where !present.contains(sender) && !present.contains(receiver) {
            if (try? SharedSegment.unlink(EndpointName.link(from: sender, to: receiver))) != nil {
                removed.append("@\(sender)>\(receiver)")
            }
        }
        return removed
    }
}

extension Endpoint {
    /// Removes the name of endpoint `name`'s segment (`/shmmb.@name`) and of every link from or to
    /// it (`/shmmb.@name>Q`, `/shmmb.@P>name`), whether or not a process holds it, and returns
    /// the object names removed, without the `shmmb.` prefix (`@name`, `@name>Q`, …); empty if
    /// there was nothing. For a program that made up its endpoint names and is done with them
    /// (as `Mailbox.delete` is for a mailbox); `removeAbandoned` is the machine-wide cleanup.
    ///
    /// As after `Mailbox.delete`, processes that have a segment open keep using it, but nobody
    /// finds it by name any more: a sender without a link to `name` yet gets `noSuchEndpoint`,
    /// a link its receiver has not opened yet is never found (its messages are lost), and
    /// `join(name)` creates a fresh segment. Segments still being built (`shmbox gc` removes
    /// those of dead creators) are left alone.
    ///
    /// - Throws: `invalidName`, `system` (listing `/dev/shm`).
    @discardableResult
    public static func remove(_ name: String) throws(MailboxError) -> [String] {
        try EndpointName.validate(name)
        var removed: [String] = []
        for object in try SharedSegment.objectNames() {
            switch EndpointName.parse(objectName: object) {
            case .endpoint(name), .link(from: name, to: _), .link(from: _, to: name):
                if (try? SharedSegment.unlink(MailboxName(derived: object))) != nil { removed.append(object) }
            default:
                break
            }
        }
        return removed
    }
}
