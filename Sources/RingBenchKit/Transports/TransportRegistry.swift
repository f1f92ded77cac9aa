import Synchronization

/// The transports this process knows: the built-in ones and those registered from outside
/// RingBenchKit (`RingBench.register(_:)`), looked up by `--transport` name.
enum TransportRegistry {
    private static let registered = Mutex<[any BenchTransport]>([])

    /// Adds `transport`. Registering a name twice replaces the earlier one; a built-in name is
    /// refused (the built-in transports' code paths stay as they are).
    static func register(_ transport: any BenchTransport) {
        precondition(!TransportKind.builtIn.contains { $0.rawValue == transport.name },
                     "\(transport.name) is a built-in ringbench transport")
        registered.withLock { list in
            list.removeAll { $0.name == transport.name }
            list.append(transport)
        }
    }

    /// Built-in transports first, then the registered ones in order of registration.
    static var all: [any BenchTransport] {
        TransportKind.builtIn.map { BuiltInTransport(kind: $0) } + registered.withLock { $0 }
    }

    static func transport(named name: String) -> (any BenchTransport)? {
        if let kind = TransportKind.builtIn.first(where: { $0.rawValue == name }) { return BuiltInTransport(kind: kind) }
        return registered.withLock { list in list.first { $0.name == name } }
    }
}
