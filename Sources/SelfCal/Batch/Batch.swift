import Foundation
import Imaging
import Logging
import SelfCalSupport

/// One Measurement Set of a batch and where its run writes.
public struct BatchEntry: Sendable, Codable, Equatable {
    public var index: Int
    public var ms: String
    public var outputDir: String
}

/// `batch.json`: what a batch is made of. Written once, read by `status`, `cancel` and re-runs.
public struct BatchPlan: Sendable, Codable {
    public var config: String
    public var entries: [BatchEntry]
    public var mode: String
    public var slurmJobIDs: [String]
    public var localPID: Int32?
    public var maxAttempts: Int
    public var attempts: [String: Int]
    public var created: String

    public static func path(_ dir: String) -> String { (dir as NSString).appendingPathComponent("batch.json") }

    public static func load(_ dir: String) throws -> BatchPlan {
        guard let data = FileManager.default.contents(atPath: path(dir)) else {
            throw PipelineError(.badInput, "not a batch directory (no batch.json)", context: dir)
        }
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        return try dec.decode(BatchPlan.self, from: data)
    }

    public func save(_ dir: String) throws {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let p = Self.path(dir)
        try enc.encode(self).write(to: URL(fileURLWithPath: p + ".tmp"))
        _ = rename(p + ".tmp", p)
    }

    /// Builds (or extends) the plan for `msPaths` under `dir`: each MS gets `NNN-<name>` for its
    /// outputs. An MS already in the plan keeps its directory.
    public static func make(dir: String, config: String, msPaths: [String], mode: String, maxAttempts: Int) throws -> BatchPlan {
        var plan = (try? load(dir)) ?? BatchPlan(config: config, entries: [], mode: mode, slurmJobIDs: [], localPID: nil,
                                                 maxAttempts: maxAttempts, attempts: [:],
                                                 created: ISO8601DateFormatter().string(from: Date()))
        plan.config = config
        plan.mode = mode
        plan.maxAttempts = maxAttempts
        let known = Set(plan.entries.map(\.ms))
        for ms in msPaths where !known.contains(ms) {
            let i = plan.entries.count
            let name = ((ms as NSString).lastPathComponent as NSString).deletingPathExtension
            plan.entries.append(BatchEntry(index: i, ms: ms, outputDir: (dir as NSString).appendingPathComponent(String(format: "%03d-%@", i, name))))
        }
        return plan
    }
}

/// One MS's line in `batch-summary.json` / `.csv`.
public struct BatchSummaryEntry: Sendable, Codable, Equatable {
    public var ms: String
    public var status: String
    public var outputDir: String
    public var initialSnr: Double?
    public var finalSnr: Double?
    public var rounds: Int
    public var wallS: Double?
    public var attempts: Int
    public var error: String?
}

public struct BatchSummary: Sendable, Codable {
    public var entries: [BatchSummaryEntry]
    public var succeeded: Int
    public var failed: Int
    public var pending: Int
    public var allSucceeded: Bool

    /// Report statuses that mean an MS is done.
    public static let doneStatuses: Set<String> = ["converged", "diverged", "max_iterations", "low_snr"]

    /// Reads each entry's report; `scheduler` may say an entry is running or pending.
    public static func collect(_ plan: BatchPlan, scheduler: [Int: String] = [:]) -> BatchSummary {
        var out: [BatchSummaryEntry] = []
        for e in plan.entries {
            let report = try? RunReport.load(from: e.outputDir)
            var status = report?.status.rawValue ?? "pending"
            if let s = scheduler[e.index], !doneStatuses.contains(status) { status = s }
            out.append(BatchSummaryEntry(ms: e.ms, status: status, outputDir: e.outputDir, initialSnr: report?.initial?.snr,
                                         finalSnr: report?.final?.snr, rounds: report?.rounds.count ?? 0, wallS: report?.wallS,
                                         attempts: plan.attempts[e.ms] ?? 0, error: report?.error))
        }
        let ok = out.filter { doneStatuses.contains($0.status) }.count
        let failed = out.filter { $0.status == "failed" || $0.status == "interrupted" }.count
        return BatchSummary(entries: out, succeeded: ok, failed: failed, pending: out.count - ok - failed, allSucceeded: ok == out.count)
    }

    /// Writes `batch-summary.json` and `batch-summary.csv`.
    public func write(to dir: String) throws {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try enc.encode(self).write(to: URL(fileURLWithPath: (dir as NSString).appendingPathComponent("batch-summary.json")))
        func f(_ d: Double?) -> String { d.map { String(format: "%.3f", $0) } ?? "" }
        func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        var csv = "ms,status,initial_snr,final_snr,rounds,wall_s,attempts,error\n"
        for e in entries {
            csv += [q(e.ms), e.status, f(e.initialSnr), f(e.finalSnr), String(e.rounds), f(e.wallS), String(e.attempts),
                    q(e.error ?? "")].joined(separator: ",") + "\n"
        }
        try csv.write(toFile: (dir as NSString).appendingPathComponent("batch-summary.csv"), atomically: true, encoding: .utf8)
    }
}

/// Which entries a (re-)run must process: not done, and not out of attempts.
public func entriesToRun(_ plan: BatchPlan) -> [BatchEntry] {
    plan.entries.filter { e in
        let status = (try? RunReport.load(from: e.outputDir))?.status.rawValue
        if let status, BatchSummary.doneStatuses.contains(status) { return false }
        return (plan.attempts[e.ms] ?? 0) < plan.maxAttempts
    }
}

/// Runs a batch on this machine: at most `jobs` `selfcal run` children at once, each its own
/// process (one crash cannot take the others down), through the process runner.
public struct LocalBatch: Sendable {
    public var selfcal: String
    public var jobs: Int
    public var taskTimeout: Duration
    public var logger: Logger

    public init(selfcal: String, jobs: Int, taskTimeout: Duration, logger: Logger) {
        self.selfcal = selfcal
        self.jobs = jobs
        self.taskTimeout = taskTimeout
        self.logger = logger
    }

    /// Runs what is left of `plan` in `dir`; `onEvent` gets a line per start and end.
    public func run(_ plan: inout BatchPlan, dir: String, onEvent: @escaping @Sendable (String) -> Void) async throws {
        let todo = entriesToRun(plan)
        let records = URL(fileURLWithPath: dir).appendingPathComponent("processes")
        try FileManager.default.createDirectory(at: records, withIntermediateDirectories: true)
        await ProcessRunner.sweepLeftovers(in: records, logger: logger)
        let runner = ProcessRunner(recordDirectory: records, logger: logger)
        for e in todo { plan.attempts[e.ms, default: 0] += 1 }
        try plan.save(dir)
        let config = plan.config
        let total = plan.entries.count
        let counter = BatchCounter(done: total - todo.count)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func launch(_ e: BatchEntry) {
                group.addTask {
                    try FileManager.default.createDirectory(atPath: e.outputDir, withIntermediateDirectories: true)
                    let spec = ProcessSpec(selfcal, arguments: ["run", config, "--ms", e.ms, "--output-dir", e.outputDir, "--resume"],
                                           logPath: URL(fileURLWithPath: e.outputDir).appendingPathComponent("batch-task.log"),
                                           timeout: taskTimeout, grace: .seconds(30))
                    onEvent("start \((e.ms as NSString).lastPathComponent)")
                    let r = try await runner.run(spec)
                    let report = try? RunReport.load(from: e.outputDir)
                    let n = counter.finish()
                    let snr = report.map { r in String(format: " SNR %.1f → %.1f", r.initial?.snr ?? 0, r.final?.snr ?? 0) } ?? ""
                    onEvent("[\(n)/\(total)] \((e.ms as NSString).lastPathComponent): \(report?.status.rawValue ?? "\(r.outcome)")\(snr)")
                }
            }
            while next < min(jobs, todo.count) { launch(todo[next]); next += 1 }
            while try await group.next() != nil {
                try checkCancelled()
                if next < todo.count { launch(todo[next]); next += 1 }
            }
        }
    }
}

final class BatchCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var done: Int
    init(done: Int) { self.done = done }
    func finish() -> Int { lock.lock(); defer { lock.unlock() }; done += 1; return done }
}

/// Slurm through its command-line tools, every call bounded by a deadline.
public struct Slurm: Sendable {
    public var runner: ProcessRunner
    public var scratch: URL
    public var timeout: Duration = .seconds(30)

    public init(runner: ProcessRunner, scratch: URL) {
        self.runner = runner
        self.scratch = scratch
    }

    func call(_ tool: String, _ args: [String]) async throws -> String {
        let log = scratch.appendingPathComponent("\(tool)-\(UUID().uuidString.prefix(8)).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let r = try await runner.run(ProcessSpec(tool, arguments: args, logPath: log, timeout: timeout, grace: .seconds(2)))
        let out = (try? String(contentsOf: log, encoding: .utf8)) ?? r.outputTail
        guard r.succeeded else {
            throw PipelineError(.toolFailed, "\(tool) failed (\(r.outcome)): \(out.trimmingCharacters(in: .whitespacesAndNewlines))", context: r.commandLine)
        }
        return out
    }

    /// Submits a job array and returns its job id.
    public func submit(script: String, indices: [Int], options: [String]) async throws -> String {
        let array = indices.map(String.init).joined(separator: ",")
        let out = try await call("sbatch", ["--parsable", "--array=\(array)"] + options + [script])
        guard let id = out.split(whereSeparator: \.isNewline).last.map({ String($0.split(separator: ";")[0]).trimmingCharacters(in: .whitespaces) }),
              !id.isEmpty, Int(id) != nil else {
            throw PipelineError(.toolFailed, "sbatch printed no job id: \(out)", context: "sbatch")
        }
        return id
    }

    /// Array task index → Slurm state (PENDING, RUNNING, ...) for tasks Slurm still knows.
    public func states(jobID: String) async throws -> [Int: String] {
        let out = try await call("squeue", ["-h", "-r", "-j", jobID, "-o", "%K %T"])
        var states: [Int: String] = [:]
        for line in out.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ")
            if parts.count == 2, let i = Int(parts[0]) { states[i] = parts[1].lowercased() }
        }
        return states
    }

    public func cancel(jobID: String) async throws {
        _ = try await call("scancel", [jobID])
    }
}

/// The job-array script: each task runs `selfcal run` on its line of the manifest, replacing
/// the shell so Slurm's signals reach selfcal directly.
public func slurmTaskScript(selfcal: String, config: String, manifest: String) -> String {
    """
    #!/bin/bash
    # Written by selfcal batch: one array task per Measurement Set.
    set -u
    line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" '\(manifest)')
    ms=${line%%$'\\t'*}
    out=${line#*$'\\t'}
    mkdir -p "$out"
    exec '\(selfcal)' run '\(config)' --ms "$ms" --output-dir "$out" --resume

    """
}
