import CNATS

/// Turning libnats results into `RemoteMailboxError`: the one place that reads libnats's
/// per-thread error text.
enum NATSStatus {
    /// libnats's text for the last error on this thread (more precise than the status's name).
    static func lastErrorText() -> String {
        var status = NATS_OK
        guard let text = nats_GetLastError(&status) else { return "" }
        return String(cString: text)
    }

    /// The status's own name, e.g. "Timeout".
    static func name(_ status: natsStatus) -> String {
        String(cString: natsStatus_GetText(status))
    }

    /// Throws unless `status` is `NATS_OK`: a JetStream error code (`errorCode` non-zero) becomes
    /// `.server`, a timeout `.timedOut`, a closed connection `.closed`, anything else `.nats`.
    static func check(_ status: natsStatus, errorCode: jsErrCode = jsErrCode(0), _ operation: String) throws(RemoteMailboxError) {
        guard status != NATS_OK else { return }
        throw error(status, errorCode: errorCode, operation)
    }

    static func error(_ status: natsStatus, errorCode: jsErrCode = jsErrCode(0), _ operation: String) -> RemoteMailboxError {
        if errorCode.rawValue != 0 {
            return .server(code: Int(errorCode.rawValue), description: "\(operation): \(lastErrorText())")
        }
        switch status {
        case NATS_TIMEOUT: return .timedOut
        case NATS_CONNECTION_CLOSED: return .closed
        default: return .nats(status: name(status), detail: "\(operation): \(lastErrorText())")
        }
    }
}
