import Foundation
import Glibc
import Logging
import SelfCalSupport

/// The one way selfcal runs an external command. It owns the process policy:
///
/// - the command is an argument array, resolved in PATH, spawned with `posix_spawn`;
/// - stdin is `/dev/null`; stdout and stderr are appended to a log file, never a pipe;
/// - the child leads a new process group (pgid = its pid), so the tool and everything it starts
///   are stopped together;
/// - a deadline, a stall watchdog (no new output for too long) and task cancellation all stop it
///   the same way: SIGTERM to the group, `grace`, SIGKILL to the group, reap;
/// - after every end, a normal exit included, a final sweep SIGKILLs whatever is left in the
///   group (a helper the tool forked and left behind, still holding the log file) and waits,
///   bounded, until no live process is left in it;
/// - with a `recordDirectory`, each live group has a file there, so that the next selfcal can
///   `sweepLeftovers(in:logger:)` after this one was SIGKILLed.
///
/// Cancellation: when the calling task is cancelled while the child runs, the child is stopped
/// as above (the stop itself is not cut short) and `run` *returns* a result with outcome
/// `.cancelled`, so the caller still gets the output tail and the log; `checked()` turns it into
/// `PipelineError(.interrupted)`. When the task is already cancelled before the spawn, nothing is
/// started and `run` throws `PipelineError(.interrupted)`.
///
/// What it cannot catch: a process that leaves the group (`setsid`, `setpgid`) or is started
/// elsewhere on the tool's request (a container started through a daemon). Those need their
/// own cleanup (the container executor removes its container).
public final class ProcessRunner: Sendable {
    /// How much of the end of the output a result carries.
    public static let tailBytes = 4096

    /// Where a file per live process group is kept; nil for none.
    public let recordDirectory: URL?
    public let logger: Logger
    /// The longest wait between two looks at the child, its deadline and its log file.
    public let pollInterval: Duration
    /// How long the runner waits for SIGKILLed processes to die (and for the child to be reaped)
    /// before it gives up and reports them in `ProcessResult.survivors`.
    public let sweepTimeout: Duration

    public init(
        recordDirectory: URL? = nil,
        logger: Logger = Logger(label: "selfcal.process"),
        pollInterval: Duration = .milliseconds(50),
        sweepTimeout: Duration = .seconds(2)
    ) {
        self.recordDirectory = recordDirectory
        self.logger = logger
        self.pollInterval = pollInterval
        self.sweepTimeout = sweepTimeout
    }

    /// Runs `spec` to its end and returns how it ended; `onOutput` gets each line the child
    /// appends to its log file, a few times a second (see `LineSplitter` for unfinished lines;
    /// under a flood of output, lines are skipped — the log file keeps everything).
    ///
    /// Throws only when the command could not be started: `.badConfig` when the executable is not
    /// found or not executable, the working directory is missing or the log file cannot be
    /// written; `.toolFailed` when `posix_spawn` itself fails; `.interrupted` when the task was
    /// cancelled before the spawn. A command that fails, crashes, times out, stalls or is
    /// cancelled is a result, not an error.
    public func run(
        _ spec: ProcessSpec,
        onOutput: (@Sendable (String) -> Void)? = nil
    ) async throws(PipelineError) -> ProcessResult {
        if Task.isCancelled {
            throw PipelineError(.interrupted, "not started: selfcal is stopping", context: spec.commandLine)
        }
        let executablePath = try resolveExecutable(spec)
        let workingDirectory = spec.workingDirectory?.fileSystemPath
        if let workingDirectory, !Syscall.isDirectory(workingDirectory) {
            throw PipelineError(
                .badConfig, "the working directory for \(spec.executable) does not exist",
                context: workingDirectory)
        }
        let logFile = spec.logPath.fileSystemPath
        let reader: Int32
        let startOffset: Int64
        do throws(Errno) {
            try Syscall.touchForAppend(logFile)
            reader = try Syscall.openForReading(logFile)
        } catch {
            throw PipelineError(
                .badConfig, "cannot write the log file for \(spec.executable): \(error)", context: logFile)
        }
        defer { Syscall.closeFile(reader) }
        startOffset = (try? Syscall.fileSize(reader)) ?? 0

        let arguments = [spec.executable] + spec.arguments
        var environment = ProcessInfo.processInfo.environment
        environment.merge(spec.environment) { _, new in new }
        let pid: pid_t
        do throws(Errno) {
            pid = try Syscall.spawn(path: executablePath, options: .init(
                argv: arguments,
                environment: environment.map { "\($0.key)=\($0.value)" }.sorted(),
                workingDirectory: workingDirectory,
                outputPath: logFile,
                newProcessGroup: true))
        } catch {
            throw PipelineError(
                .toolFailed, "could not start \(executablePath): \(error)", context: spec.commandLine)
        }
        let started = ContinuousClock.now

        var pgidLogger = self.logger
        pgidLogger[metadataKey: "process.pgid"] = "\(pid)"
        let logger = pgidLogger
        logger.info("run: \(spec.commandLine)", metadata: [
            "process.executable": "\(executablePath)",
            "process.log": "\(logFile)",
        ])
        let recordURL = writeRecord(pgid: pid, arguments: arguments, executablePath: executablePath, logger: logger)

        // Watch until the child ends or must be stopped.
        var follower = OutputFollower(fd: reader, offset: startOffset, onOutput: onOutput)
        let ending = await watch(pid: pid, spec: spec, started: started, reader: reader, follower: &follower)

        // Stop (if needed), reap, sweep: none of it may be cut short by cancellation.
        let grace = spec.grace
        let (outcome, status, survivors) = await withUncancelledTask { () async -> (ProcessResult.Outcome, WaitStatus?, [pid_t]) in
            var outcome: ProcessResult.Outcome
            var status: WaitStatus?
            switch ending {
            case .ended(let waitStatus):
                status = waitStatus
                switch waitStatus {
                case .exited(let code): outcome = .exited(code)
                case .signalled(let signal): outcome = .signalled(signal)
                }
            case .lost:
                status = nil
                outcome = .exited(-1)
            case .mustStop(let reason):
                logger.info("stopping \(spec.executable): \(reason) after \(formatSeconds(started.duration(to: .now)))")
                outcome = reason
                status = await self.stop(pid: pid, grace: grace, logger: logger)
            }
            let survivors = await Self.sweep(group: pid, within: self.sweepTimeout, logger: logger)
            if status == nil, case .mustStop = ending, case .ended(let late) = Self.reap(pid) {
                status = late
            }
            return (outcome, status, survivors)
        }
        let duration = started.duration(to: .now)

        let size = (try? Syscall.fileSize(reader)) ?? startOffset
        follower.finish(size: size, at: .now)
        let tail = readTail(fd: reader, from: startOffset, to: size)

        if let recordURL, survivors.isEmpty {
            try? FileManager.default.removeItem(at: recordURL)
        }
        let result = ProcessResult(
            arguments: arguments, executablePath: executablePath, processGroup: pid,
            outcome: outcome, status: status.map(ProcessResult.TerminationStatus.init),
            duration: duration, outputTail: tail, logPath: spec.logPath, survivors: survivors)
        var endMetadata: Logger.Metadata = [
            "process.outcome": "\(outcome)",
            "process.duration_s": "\(String(format: "%.3f", duration.seconds))",
        ]
        if let status = result.status { endMetadata["process.status"] = "\(status)" }
        if !survivors.isEmpty { endMetadata["process.survivors"] = "\(survivors)" }
        logger.info("\(spec.executable) \(outcome) in \(formatSeconds(duration))", metadata: endMetadata)
        return result
    }

    // MARK: Watching

    private enum Ending: Sendable {
        /// The child ended by itself.
        case ended(WaitStatus)
        /// The child is gone, but someone else reaped it (SIGCHLD ignored, a stray `waitpid(-1)`).
        case lost
        /// The runner must stop it.
        case mustStop(ProcessResult.Outcome)
    }

    private func watch(
        pid: pid_t, spec: ProcessSpec, started: ContinuousClock.Instant, reader: Int32,
        follower: inout OutputFollower
    ) async -> Ending {
        var lastSize = follower.offset
        var lastGrowth = started
        // Short commands end in milliseconds: look again soon, then settle at `pollInterval`.
        var delay: Duration = .milliseconds(2)
        while true {
            switch Self.reap(pid) {
            case .ended(let status): return .ended(status)
            case .lost: return .lost
            case .running: break
            }
            let now = ContinuousClock.now
            if let size = try? Syscall.fileSize(reader) {
                if size != lastSize {
                    lastSize = size
                    lastGrowth = now
                }
                follower.poll(size: size, at: now)
            }
            if let timeout = spec.timeout, now - started >= timeout { return .mustStop(.timedOut) }
            if let stall = spec.stallTimeout, now - lastGrowth >= stall { return .mustStop(.stalled) }
            do {
                try await Task.sleep(for: delay)
            } catch {
                return .mustStop(.cancelled)
            }
            delay = min(delay * 2, pollInterval)
        }
    }

    private enum Reap { case running, ended(WaitStatus), lost }

    private static func reap(_ pid: pid_t) -> Reap {
        do throws(Errno) {
            return try Syscall.waitNoHang(pid).map(Reap.ended) ?? .running
        } catch {
            return .lost
        }
    }

    // MARK: Stopping

    /// SIGTERM to the group; up to `grace` for the child to end and the group to empty; SIGKILL to
    /// the group; up to `sweepTimeout` for the child to be reaped. Returns its status, or nil when
    /// it could not be reaped.
    private func stop(pid: pid_t, grace: Duration, logger: Logger) async -> WaitStatus? {
        var status: WaitStatus?
        var lost = false
        func look() {
            guard status == nil, !lost else { return }
            switch Self.reap(pid) {
            case .ended(let s): status = s
            case .lost: lost = true
            case .running: break
            }
        }
        try? Syscall.signalGroup(pid, SIGTERM)
        let termDeadline = ContinuousClock.now + grace
        while true {
            look()
            if (status != nil || lost) && !Self.groupHasLiveMembers(pid) { return status }
            if ContinuousClock.now >= termDeadline { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        logger.info("\(pid) still running \(formatSeconds(grace)) after SIGTERM: SIGKILL to its group")
        try? Syscall.signalGroup(pid, SIGKILL)
        let killDeadline = ContinuousClock.now + sweepTimeout
        while status == nil && !lost && ContinuousClock.now < killDeadline {
            try? await Task.sleep(for: .milliseconds(5))
            look()
        }
        return status
    }

    /// The final sweep: SIGKILL to the group until no live process is left in it (zombies waiting
    /// for PID 1 to reap them do not count), for at most `bound`. Returns the survivors.
    static func sweep(group pgid: pid_t, within bound: Duration, logger: Logger) async -> [pid_t] {
        let deadline = ContinuousClock.now + bound
        var signalled = false
        while true {
            do throws(Errno) {
                try Syscall.signalGroup(pgid, SIGKILL)
                if !signalled { logger.debug("final sweep: SIGKILL to the group") }
                signalled = true
            } catch {
                if error == .noSuchProcess { return [] }
            }
            let live = ProcFS.liveMembers(ofGroup: pgid)
            if live.isEmpty { return [] }
            if ContinuousClock.now >= deadline {
                logger.info("processes \(live) of group \(pgid) survived SIGKILL for \(formatSeconds(bound))")
                return live
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    static func groupHasLiveMembers(_ pgid: pid_t) -> Bool {
        Syscall.groupExists(pgid) && !ProcFS.liveMembers(ofGroup: pgid).isEmpty
    }

    // MARK: Helpers

    /// `spec.executable` as a path to execute: a name is searched in PATH (the spec's own PATH if
    /// it sets one); a relative path is taken from selfcal's working directory.
    private func resolveExecutable(_ spec: ProcessSpec) throws(PipelineError) -> String {
        let name = spec.executable
        guard !name.isEmpty else {
            throw PipelineError(.badConfig, "no executable given", context: spec.commandLine)
        }
        if name.contains("/") {
            let path = name.hasPrefix("/") ? name : FileManager.default.currentDirectoryPath + "/" + name
            guard Syscall.isExecutableFile(path) else {
                throw PipelineError(
                    .badConfig, "\(path) does not exist or is not an executable file; give the right path",
                    context: name)
            }
            return path
        }
        let searchPath = spec.environment["PATH"]
            ?? ProcessInfo.processInfo.environment["PATH"]
            ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + name
            if Syscall.isExecutableFile(candidate) { return candidate }
        }
        throw PipelineError(
            .badConfig,
            "\(name) was not found in PATH (\(searchPath)); install it or give its full path",
            context: name)
    }

    private func writeRecord(pgid: pid_t, arguments: [String], executablePath: String, logger: Logger) -> URL? {
        guard let recordDirectory else { return nil }
        let record = ProcessRecord.forChild(pgid: pgid, arguments: arguments, executablePath: executablePath)
        do {
            try record.write(in: recordDirectory)
            return ProcessRecord.fileURL(pgid: pgid, in: recordDirectory)
        } catch {
            logger.info("could not record the process group in \(recordDirectory.fileSystemPath): \(error)")
            return nil
        }
    }

    private func readTail(fd: Int32, from start: Int64, to end: Int64) -> String {
        let from = max(start, end - Int64(Self.tailBytes))
        guard end > from, var bytes = try? Syscall.read(fd, count: Int(end - from), at: from)[...] else {
            return ""
        }
        if from > start, let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
            bytes = bytes[(newline + 1)...]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

// MARK: - Leftovers of an earlier selfcal

extension ProcessRunner {
    /// Kills the process groups recorded in `directory` by an earlier selfcal that did not live to
    /// sweep them (it was SIGKILLed, or the machine's OOM killer took it), and deletes their
    /// records. Returns the groups it killed.
    ///
    /// A record is left alone while the selfcal that wrote it still runs. Before killing, the
    /// recorded first process, if it still exists, must still look like the recorded command
    /// (`/proc/<pid>/cmdline`, and its start time when recorded): otherwise its pid was given to
    /// another process since, and the record is only deleted. When that first process is gone
    /// but its group still has live processes, those are the tool's leftovers (a group id
    /// stays taken while any member lives) and are killed.
    @discardableResult
    public static func sweepLeftovers(
        in directory: URL, logger: Logger = Logger(label: "selfcal.process")
    ) async -> [Int32] {
        await withUncancelledTask { await sweepLeftoversNow(in: directory, logger: logger) }
    }

    private static func sweepLeftoversNow(in directory: URL, logger: Logger) async -> [Int32] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.fileSystemPath) else {
            return []
        }
        var killed: [Int32] = []
        for name in names.sorted() where name.hasPrefix(ProcessRecord.filePrefix) {
            let url = directory.appendingPathComponent(name)
            var logger = logger
            logger[metadataKey: "process.record"] = "\(url.fileSystemPath)"
            guard let record = try? ProcessRecord.read(from: url), record.pgid > 1 else {
                logger.info("removing an unreadable process record")
                try? FileManager.default.removeItem(at: url)
                continue
            }
            logger[metadataKey: "process.pgid"] = "\(record.pgid)"
            if record.ownerIsAlive { continue }

            let shouldKill: Bool
            if let leader = ProcFS.stat(record.pgid), !leader.isZombie {
                shouldKill = record.describesLiveLeader(leader)
                if !shouldKill {
                    logger.info("pid \(record.pgid) now belongs to another process; not killing it")
                }
            } else {
                shouldKill = groupHasLiveMembers(record.pgid)
            }
            var survivors: [pid_t] = []
            if shouldKill {
                logger.info("killing process group left by an earlier selfcal: \(record.command)")
                survivors = await sweep(group: record.pgid, within: .seconds(2), logger: logger)
                killed.append(record.pgid)
            }
            if survivors.isEmpty { try? FileManager.default.removeItem(at: url) }
        }
        return killed
    }
}

/// Runs `body` in a task of its own, which is not cancelled even when the caller is, and waits
/// for it. Structured in effect: the caller awaits it before going on. Stopping and sweeping a
/// child must finish even (above all) when selfcal is being cancelled; in a cancelled task
/// `Task.sleep` would return at once and the grace period would become a busy loop.
func withUncancelledTask<Result: Sendable>(_ body: @escaping @Sendable () async -> Result) async -> Result {
    await Task { await body() }.value
}

func formatSeconds(_ duration: Duration) -> String {
    String(format: "%.2f s", duration.seconds)
}

extension ProcessResult.TerminationStatus {
    init(_ status: WaitStatus) {
        switch status {
        case .exited(let code): self = .exited(code)
        case .signalled(let signal): self = .signalled(signal)
        }
    }
}
