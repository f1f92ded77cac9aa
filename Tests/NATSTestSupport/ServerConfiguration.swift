/// Everything that goes into one server's configuration file, and its rendering.
struct ServerConfiguration: Sendable {
    /// Cluster membership: the cluster's name, this server's route port, and every member's route URL.
    struct Cluster: Sendable {
        var name: String
        var port: Int
        var routes: [String]
    }

    var name: String
    /// The address the client, monitoring and route listeners bind to.
    var host: String
    var port: Int
    var monitorPort: Int
    var storeDirectory: String
    var options: NATSServer.Options
    var cluster: Cluster?

    /// The health-check path: with JetStream on, the server is only healthy once JetStream is.
    var healthPath: String { options.jetStream ? "/healthz?js-enabled=true" : "/healthz" }

    /// The nats-server configuration file text.
    func render() -> String {
        var lines = [
            "server_name: \(quoted(name))",
            "listen: \(quoted("\(host):\(port)"))",
            "http: \(quoted("\(host):\(monitorPort)"))",
        ]
        if let maxPayload = options.maxPayload { lines.append("max_payload: \(maxPayload)") }
        if let token = options.token {
            lines.append("authorization { token: \(quoted(token)) }")
        } else if let user = options.user {
            lines.append("authorization { user: \(quoted(user)), password: \(quoted(options.password ?? "")) }")
        }
        if options.jetStream { lines.append("jetstream { store_dir: \(quoted(storeDirectory)) }") }
        if let cluster {
            let routes = cluster.routes.map(quoted).joined(separator: ", ")
            lines.append("cluster { name: \(quoted(cluster.name)), listen: \(quoted("\(host):\(cluster.port)")), routes: [\(routes)] }")
        }
        if !options.extraConfiguration.isEmpty { lines.append(options.extraConfiguration) }
        return lines.joined(separator: "\n") + "\n"
    }

    private func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
