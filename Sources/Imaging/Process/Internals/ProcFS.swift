// What Linux's /proc says about processes: state, process group, start time, command line.
// Reads go through `Syscall`; a process that vanishes between two reads simply reads as absent.

import Glibc

/// One line of `/proc/<pid>/stat`, the fields the runner needs.
struct ProcessStat: Equatable, Sendable {
    var pid: pid_t
    /// Field 3: R, S, D, Z, T, ...
    var state: Character
    /// Field 5.
    var processGroup: pid_t
    /// Field 22: clock ticks after boot. With the pid, it names one process for the whole uptime.
    var startTime: UInt64

    /// A zombie has exited and only waits to be reaped; it can do nothing and holds no files.
    var isZombie: Bool { state == "Z" || state == "X" }
}

enum ProcFS {
    /// Parses `/proc/<pid>/stat`; nil when the process does not exist (or the file is odd).
    static func stat(_ pid: pid_t) -> ProcessStat? {
        guard let bytes = try? Syscall.readWholeFile("/proc/\(pid)/stat", limit: 4096) else {
            return nil
        }
        return parseStat(bytes, pid: pid)
    }

    /// The command name (field 2) is in parentheses and may itself hold spaces and ')', so the
    /// fields are counted from the last ')'.
    static func parseStat(_ bytes: [UInt8], pid: pid_t) -> ProcessStat? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let rest = String(decoding: bytes[(close + 1)...], as: UTF8.self)
        let fields = rest.split(separator: " ", omittingEmptySubsequences: true)
        // fields[0] is field 3 (state), so field n is fields[n - 3].
        guard fields.count >= 20,
              let state = fields[0].first,
              let group = pid_t(fields[2]),
              let start = UInt64(fields[19])
        else { return nil }
        return ProcessStat(pid: pid, state: state, processGroup: group, startTime: start)
    }

    /// `/proc/<pid>/cmdline` split at NULs; nil when the process does not exist, empty for a
    /// zombie or a kernel thread.
    static func commandLine(_ pid: pid_t) -> [String]? {
        guard let bytes = try? Syscall.readWholeFile("/proc/\(pid)/cmdline") else { return nil }
        var parts = bytes.split(separator: 0, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    /// The processes of group `pgid` that are still alive (zombies left out: on machines whose
    /// PID 1 reaps orphans late they linger, dead, for a while). Scans /proc.
    static func liveMembers(ofGroup pgid: pid_t) -> [pid_t] {
        guard let names = try? Syscall.directoryEntries("/proc") else { return [] }
        var members: [pid_t] = []
        for name in names {
            guard let pid = pid_t(name), let info = stat(pid) else { continue }
            if info.processGroup == pgid && !info.isZombie { members.append(pid) }
        }
        return members.sorted()
    }

    /// The pids of live processes whose command name (`/proc/<pid>/stat` field 2, at most 15
    /// bytes) is `name`. Scans /proc.
    static func processes(named name: String) -> [pid_t] {
        guard let names = try? Syscall.directoryEntries("/proc") else { return [] }
        var found: [pid_t] = []
        for entry in names {
            guard let pid = pid_t(entry),
                  let bytes = try? Syscall.readWholeFile("/proc/\(pid)/stat", limit: 4096),
                  let open = bytes.firstIndex(of: UInt8(ascii: "(")),
                  let close = bytes.lastIndex(of: UInt8(ascii: ")")), open < close,
                  let info = parseStat(bytes, pid: pid), !info.isZombie
            else { continue }
            if String(decoding: bytes[(open + 1)..<close], as: UTF8.self) == name { found.append(pid) }
        }
        return found.sorted()
    }

    /// Whether `pid` is alive and started at `startTime` (so it is the process we knew, not a
    /// later one that was given the same pid).
    static func isAlive(_ pid: pid_t, startTime: UInt64) -> Bool {
        guard let info = stat(pid) else { return false }
        return !info.isZombie && info.startTime == startTime
    }
}
