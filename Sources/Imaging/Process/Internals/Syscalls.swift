// The one place in selfcal that calls the C library for processes and files.
//
// Every wrapper names the C call it wraps, turns `-1`/`errno` (or a returned error number) into a
// thrown `Errno`, and retries on EINTR where the call can be interrupted. Nothing outside
// `Internals/` calls Glibc for these things.

import Glibc

/// A C `errno` value, thrown by the wrappers in `Syscall`.
struct Errno: Error, Equatable, Sendable, CustomStringConvertible {
    var rawValue: Int32

    static let noSuchProcess = Errno(rawValue: ESRCH)
    static let noChild = Errno(rawValue: ECHILD)
    static let notFound = Errno(rawValue: ENOENT)
    static let interrupted = Errno(rawValue: EINTR)

    /// `strerror(3)`, with the number beside it.
    var description: String {
        let text = strerror(rawValue).map { String(cString: $0) } ?? "unknown error"
        return "\(text) (errno \(rawValue))"
    }

    /// The current thread's `errno`.
    static var current: Errno { Errno(rawValue: errno) }
}

/// How a child ended, decoded from a `waitpid(2)` status word.
enum WaitStatus: Equatable, Sendable {
    case exited(Int32)
    case signalled(Int32)

    /// Decodes what `WIFEXITED`/`WEXITSTATUS`/`WTERMSIG` (C macros Swift cannot see) would say.
    init(raw: Int32) {
        let signal = raw & 0x7f
        if signal == 0 {
            self = .exited((raw >> 8) & 0xff)
        } else {
            self = .signalled(signal)
        }
    }
}

/// Thin wrappers over the C calls selfcal's process runner needs.
enum Syscall {
    // MARK: Processes

    /// What `spawn` should set up in the child before it runs `path`.
    struct SpawnOptions {
        /// The whole argv, argv[0] included.
        var argv: [String]
        /// The whole environment, as `NAME=value`.
        var environment: [String]
        /// `chdir` here first (`posix_spawn_file_actions_addchdir_np`).
        var workingDirectory: String?
        /// stdout and stderr are opened on this file with `O_WRONLY|O_CREAT|O_APPEND`;
        /// stdin is `/dev/null`. Every other descriptor is closed in the child.
        var outputPath: String
        /// Put the child into a new process group whose id is its pid (`POSIX_SPAWN_SETPGROUP`).
        var newProcessGroup: Bool
    }

    /// `posix_spawn(3)`: starts `path` (not searched in PATH) with default signal dispositions and
    /// an empty signal mask, its output on `options.outputPath`, and returns its pid.
    ///
    /// Throws the errno of whatever failed: a file action (bad working directory, unwritable log),
    /// or the `execve` itself (ENOENT, EACCES, ENOEXEC), which glibc reports back synchronously.
    static func spawn(path: String, options: SpawnOptions) throws(Errno) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        try check(posix_spawn_file_actions_init(&actions))
        defer { posix_spawn_file_actions_destroy(&actions) }
        try check(posix_spawnattr_init(&attributes))
        defer { posix_spawnattr_destroy(&attributes) }

        // The output file first, so that a relative path means the same here and in the child.
        try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0))
        try check(posix_spawn_file_actions_addopen(
            &actions, 1, options.outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644))
        try check(posix_spawn_file_actions_adddup2(&actions, 1, 2))
        if let directory = options.workingDirectory {
            guard let addchdir = GNUSpawn.addchdir else { throw Errno(rawValue: ENOSYS) }
            try check(addchdir(&actions, directory))
        }
        // No descriptor of ours (another run's log, a socket, a pipe) may leak into the child.
        // (Without addclosefrom_np, glibc < 2.34, only O_CLOEXEC protects them.)
        if let addclosefrom = GNUSpawn.addclosefrom {
            try check(addclosefrom(&actions, 3))
        }

        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if options.newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            try check(posix_spawnattr_setpgroup(&attributes, 0))
        }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        try check(posix_spawnattr_setsigmask(&attributes, &emptyMask))
        // Signals the parent ignores (SIGPIPE, SIGINT under a signal handler) would stay ignored
        // across exec; give the child the defaults for every ordinary signal.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in 1..<Int32(32) where signal != SIGKILL && signal != SIGSTOP {
            sigaddset(&defaults, signal)
        }
        try check(posix_spawnattr_setsigdefault(&attributes, &defaults))
        try check(posix_spawnattr_setflags(&attributes, Int16(flags)))

        let argv = options.argv.map { strdup($0) } + [nil]
        let envp = options.environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        try check(posix_spawn(&pid, path, &actions, &attributes, argv, envp))
        return pid
    }

    /// `waitpid(pid, &status, WNOHANG)`: nil while the child runs, its status once it has ended
    /// (and it is reaped). Throws ECHILD when `pid` is not our child (or already reaped).
    static func waitNoHang(_ pid: pid_t) throws(Errno) -> WaitStatus? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return WaitStatus(raw: status) }
            if result == 0 { return nil }
            let error = Errno.current
            if error != .interrupted { throw error }
        }
    }

    /// `kill(pid, signal)` for one process.
    static func signalProcess(_ pid: pid_t, _ signal: Int32) throws(Errno) {
        if kill(pid, signal) != 0 { throw Errno.current }
    }

    /// `kill(-pgid, signal)`: every process in the group. ESRCH when the group is empty.
    static func signalGroup(_ pgid: pid_t, _ signal: Int32) throws(Errno) {
        precondition(pgid > 1, "refusing to signal process group \(pgid)")
        if kill(-pgid, signal) != 0 { throw Errno.current }
    }

    /// `kill(-pgid, 0)`: false only on ESRCH (no process, not even a zombie, is in the group).
    static func groupExists(_ pgid: pid_t) -> Bool {
        guard pgid > 1 else { return false }
        return kill(-pgid, 0) == 0 || errno != ESRCH
    }

    /// `getpid(2)`.
    static func currentProcessID() -> pid_t { getpid() }

    /// `getuid(2)`: the real user id.
    static func userID() -> uid_t { getuid() }

    /// `getgid(2)`: the real group id.
    static func groupID() -> gid_t { getgid() }

    /// `gethostname(2)`; "localhost" if it fails.
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Files

    /// `open(path, O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, 0644)` then `close`: makes sure the file
    /// exists and can be appended to.
    static func touchForAppend(_ path: String) throws(Errno) {
        let fd = try openFile(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode: 0o644)
        closeFile(fd)
    }

    /// `open(path, O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, 0644)`, `write(2)` until all of `bytes`
    /// is written (retried on EINTR), `close`. With O_APPEND, writers in several threads never
    /// overwrite each other.
    static func append(_ bytes: [UInt8], to path: String) throws(Errno) {
        let fd = try openFile(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode: 0o644)
        defer { closeFile(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { buffer in
                write(fd, buffer.baseAddress! + written, bytes.count - written)
            }
            if n < 0 {
                let error = Errno.current
                if error == .interrupted { continue }
                throw error
            }
            written += n
        }
    }

    /// `open(path, O_RDONLY|O_CLOEXEC)`.
    static func openForReading(_ path: String) throws(Errno) -> Int32 {
        try openFile(path, O_RDONLY | O_CLOEXEC, mode: 0)
    }

    /// `open(2)`, retried on EINTR.
    private static func openFile(_ path: String, _ flags: Int32, mode: mode_t) throws(Errno) -> Int32 {
        while true {
            let fd = open(path, flags, mode)
            if fd >= 0 { return fd }
            let error = Errno.current
            if error != .interrupted { throw error }
        }
    }

    /// `close(2)`; errors are ignored (the descriptor is gone either way on Linux).
    static func closeFile(_ fd: Int32) {
        _ = close(fd)
    }

    /// `fstat(2)`: the size in bytes of an open file.
    static func fileSize(_ fd: Int32) throws(Errno) -> Int64 {
        var info = stat()
        if fstat(fd, &info) != 0 { throw Errno.current }
        return Int64(info.st_size)
    }

    /// `stat(2)`: whether `path` is a directory.
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// `stat(2)` and `access(path, X_OK)`: whether `path` is a regular file we may execute.
    static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        return access(path, X_OK) == 0
    }

    /// `pread(2)` of up to `count` bytes at `offset` (fewer at end of file), retried on EINTR
    /// and looped until `count` bytes or end of file.
    static func read(_ fd: Int32, count: Int, at offset: Int64) throws(Errno) -> [UInt8] {
        guard count > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = buffer.withUnsafeMutableBytes { raw in
                pread(fd, raw.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled))
            }
            if n > 0 {
                filled += n
            } else if n == 0 {
                break
            } else {
                let error = Errno.current
                if error != .interrupted { throw error }
            }
        }
        buffer.removeSubrange(filled...)
        return buffer
    }

    /// `open`, `read` until end of file (at most `limit` bytes), `close`. For small files such as
    /// `/proc/<pid>/stat`, whose size `stat` does not tell.
    static func readWholeFile(_ path: String, limit: Int = 1 << 20) throws(Errno) -> [UInt8] {
        let fd = try openForReading(path)
        defer { closeFile(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let n = chunk.withUnsafeMutableBytes { raw in
                Glibc.read(fd, raw.baseAddress!, raw.count)
            }
            if n > 0 {
                bytes.append(contentsOf: chunk[0..<n])
            } else if n == 0 {
                break
            } else {
                let error = Errno.current
                if error != .interrupted { throw error }
            }
        }
        return bytes
    }

    /// `opendir(3)`/`readdir(3)`: the names in a directory, without `.` and `..`.
    static func directoryEntries(_ path: String) throws(Errno) -> [String] {
        guard let directory = opendir(path) else { throw Errno.current }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    // MARK: Helpers

    /// glibc's GNU extensions to posix_spawn. `<spawn.h>` declares them only under `_GNU_SOURCE`,
    /// which Swift's Glibc module is not built with, so they are looked up with `dlsym(3)`.
    private enum GNUSpawn {
        typealias AddChdir = @convention(c) (
            UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32
        typealias AddClosefrom = @convention(c) (
            UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

        /// `posix_spawn_file_actions_addchdir_np` (glibc 2.29).
        static var addchdir: AddChdir? { lookUp("posix_spawn_file_actions_addchdir_np") }
        /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34).
        static var addclosefrom: AddClosefrom? { lookUp("posix_spawn_file_actions_addclosefrom_np") }

        /// `dlsym(RTLD_DEFAULT, name)`.
        private static func lookUp<F>(_ name: String) -> F? {
            guard let symbol = dlsym(nil, name) else { return nil }
            return unsafeBitCast(symbol, to: F.self)
        }
    }

    /// posix_spawn and its helpers return the error number instead of setting errno.
    private static func check(_ result: Int32) throws(Errno) {
        if result != 0 { throw Errno(rawValue: result) }
    }
}
