import Foundation

extension MachineFacts {
    /// Facts about this machine, now: CPU model ("model name" in /proc/cpuinfo), online cores,
    /// kernel (uname sysname and release), the date in ISO 8601 UTC and the 1-minute load average
    /// (/proc/loadavg). A fact that cannot be read is "unknown" (text), 1 (cores) or 0 (load).
    public static func current() -> MachineFacts {
        MachineFacts(cpuModel: currentCPUModel(), cores: currentCores(), kernel: currentKernel(),
                     date: isoDate(Date()), loadAverage: currentLoadAverage())
    }

    static func currentCPUModel() -> String {
        if let info = Sys.readSmallFile("/proc/cpuinfo"), let model = cpuModel(fromCPUInfo: info) {
            return model
        }
        let machine = unameFields().machine
        return machine.isEmpty ? "unknown" : machine
    }

    /// The first "model name" in /proc/cpuinfo text; other architectures' names for it as fallbacks.
    static func cpuModel(fromCPUInfo info: String) -> String? {
        let lines = info.split(whereSeparator: \.isNewline)
        for key in ["model name", "Model", "Hardware", "cpu model", "cpu", "uarch"] {
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].trimmingCharacters(in: .whitespaces)
                guard name == key else { continue }
                let value = line[line.index(after: colon)...]
                    .split(whereSeparator: \.isWhitespace).joined(separator: " ")
                if !value.isEmpty { return value }
            }
        }
        return nil
    }

    static func currentCores() -> Int {
        max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    static func currentKernel() -> String {
        let fields = unameFields()
        let kernel = [fields.sysname, fields.release].filter { !$0.isEmpty }.joined(separator: " ")
        return kernel.isEmpty ? "unknown" : kernel
    }

    static func currentLoadAverage() -> Double {
        if let text = Sys.readSmallFile("/proc/loadavg"),
           let first = text.split(whereSeparator: \.isWhitespace).first,
           let load = Double(first), load.isFinite {
            return load
        }
        var loads = [Double](repeating: 0, count: 3)
        if getloadavg(&loads, 3) >= 1, loads[0].isFinite { return loads[0] }
        return 0
    }

    /// "2025-06-01T12:34:56Z".
    static func isoDate(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC") ?? .gmt))
    }

    private static func unameFields() -> (sysname: String, release: String, machine: String) {
        var names = utsname()
        guard uname(&names) == 0 else { return ("", "", "") }
        func text<T>(_ field: inout T) -> String {
            withUnsafeBytes(of: &field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return (text(&names.sysname), text(&names.release), text(&names.machine))
    }
}
