#if canImport(Glibc)
import Glibc
#endif
import RingBenchKit

/// Starts `executable` with `arguments` (argv[0] is the executable), standard input from
/// /dev/null and standard output and error into `log` (truncated): how ringbench-nats starts its
/// nats-server and its bridges.
///
/// The child starts with no blocked signals and the default dispositions of SIGTERM, SIGINT and
/// SIGPIPE: it must see the SIGTERM that stops it, even when this process was started with
/// signals blocked (as test runners start it).
func spawnLogged(_ executable: String, _ arguments: [String], log: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t(), stopSignals = sigset_t()
    sigemptyset(&none)
    sigemptyset(&stopSignals)
    sigaddset(&stopSignals, SIGTERM)
    sigaddset(&stopSignals, SIGINT)
    sigaddset(&stopSignals, SIGPIPE)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &stopSignals)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, &attributes, &argv, environ)
    guard rc == 0 else { throw BenchError.system(operation: "posix_spawn(\(executable))", errno: rc) }
    return pid
}
