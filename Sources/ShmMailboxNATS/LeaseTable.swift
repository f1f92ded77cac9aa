import CNATS

/// Leases across machines: one JetStream key-value bucket (`SHMMB_LEASES`) whose keys name a
/// role (`<mailbox>.receiver`, `<mailbox>.sender`, `<mailbox>.owner`, `endpoint.<name>`) and
/// whose values name the holder. The one primitive behind every remote role, turn and
/// ownership, as the local `Lease` is behind the shared-memory ones:
///
/// - **take**: from free to me. Free is a missing key (never taken, or expired: the bucket's
///   `max_age` drops a value not refreshed for `ttl`) or an empty value (released). Each step is
///   conditional on the revision just read (`create` only if absent, `update` only if the latest
///   revision is the one judged free), so two takers never both succeed.
/// - **refresh**: rewrite my value conditionally on my last revision; a refresh that finds
///   another revision means the lease expired and someone else took it: lost.
/// - **release**: rewrite to empty, conditionally on my revision (never clears another's).
///
/// A holder that dies or loses its connection stops refreshing; `ttl` later its lease is free.
///
/// The same table without a time to live (`SHMMB_RIGHTS`) keeps what must outlive its writer:
/// a system-owned mailbox's owner and the receive rights it granted; and (`SHMMB_PACKS`) how far
/// receivers got through packs (see `Pack`).
final class LeaseTable: @unchecked Sendable {
    static let bucket = "SHMMB_LEASES"
    /// How long a lease lives unrefreshed (its holder is refreshed every `ttl / 4`).
    static let ttl = Duration.seconds(4)

    /// The outcome of `take`.
    enum Take: Equatable {
        case taken(revision: UInt64)
        case held(by: String)
    }

    private let store: OpaquePointer

    /// Opens `bucket`, creating it (with `replicas` copies, values living `ttl` unrefreshed, or
    /// forever if nil) if missing.
    init(connection: NATSConnection, bucket: String = LeaseTable.bucket, ttl: Duration? = LeaseTable.ttl,
         replicas: Int) throws(RemoteMailboxError) {
        var store: OpaquePointer?
        var status = js_KeyValue(&store, connection.jetStream, bucket)
        if status == NATS_NOT_FOUND {
            var config = kvConfig()
            kvConfig_Init(&config)
            status = bucket.withCString { name in
                config.Bucket = name
                config.History = 1
                config.TTL = ttl?.nanoseconds ?? 0
                config.Replicas = Int32(replicas)
                config.StorageType = js_FileStorage
                return js_CreateKeyValue(&store, connection.jetStream, &config)
            }
        }
        try NATSStatus.check(status, "opening the key-value bucket \(bucket)")
        self.store = store!
    }

    deinit { kvStore_Destroy(store) }

    /// Takes `key` for `holder` if it is free; else says who holds it.
    func take(_ key: String, holder: String) throws(RemoteMailboxError) -> Take {
        // A few rounds: a value can expire or be released between our read and our write.
        for _ in 0..<8 {
            var revision: UInt64 = 0
            let created = kvStore_CreateString(&revision, store, key, holder)
            if created == NATS_OK { return .taken(revision: revision) }
            guard let (current, value) = try read(key) else { continue }
            if !value.isEmpty { return .held(by: value) }
            // Released: take it, but only from the revision we judged free.
            if kvStore_UpdateString(&revision, store, key, holder, current) == NATS_OK { return .taken(revision: revision) }
        }
        throw .nats(status: "lease contention", detail: "could not settle who holds \(key)")
    }

    /// Rewrites `holder` under `key` if `revision` is still the latest; the new revision, or nil
    /// if the lease was lost (expired and taken, or gone).
    func refresh(_ key: String, holder: String, revision: UInt64) -> UInt64? {
        var next: UInt64 = 0
        let status = kvStore_UpdateString(&next, store, key, holder, revision)
        if status == NATS_OK { return next }
        // A missing key (expired, not retaken) is also lost: someone may take it any moment.
        return nil
    }

    /// Releases `key` if `revision` is still ours.
    func release(_ key: String, revision: UInt64) {
        var next: UInt64 = 0
        _ = kvStore_UpdateString(&next, store, key, "", revision)
    }

    /// Who holds `key` (nil: free).
    func holder(of key: String) throws(RemoteMailboxError) -> String? {
        guard let (_, value) = try read(key), !value.isEmpty else { return nil }
        return value
    }

    /// Sets `key` to `value` whatever it was.
    func put(_ key: String, _ value: String) throws(RemoteMailboxError) {
        var revision: UInt64 = 0
        try NATSStatus.check(kvStore_PutString(&revision, store, key, value), "writing \(key)")
    }

    /// Sets `key` to `value` only if it has none; false if it has.
    func create(_ key: String, _ value: String) -> Bool {
        var revision: UInt64 = 0
        return kvStore_CreateString(&revision, store, key, value) == NATS_OK
    }

    /// Sets `key` to `value` only if its latest revision is `revision`; false if it changed.
    func update(_ key: String, _ value: String, revision: UInt64) -> Bool {
        var next: UInt64 = 0
        return kvStore_UpdateString(&next, store, key, value, revision) == NATS_OK
    }

    /// Removes `key` (absent already is fine).
    func remove(_ key: String) {
        _ = kvStore_Delete(store, key)
    }

    /// The latest revision and value of `key`; nil when it has none (never set, expired, deleted).
    func read(_ key: String) throws(RemoteMailboxError) -> (UInt64, String)? {
        var entry: OpaquePointer?
        let status = kvStore_Get(&entry, store, key)
        if status == NATS_NOT_FOUND { return nil }
        try NATSStatus.check(status, "reading lease \(key)")
        defer { kvEntry_Destroy(entry) }
        let value = kvEntry_ValueString(entry).map { String(cString: $0) } ?? ""
        return (kvEntry_Revision(entry), value)
    }
}
