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
