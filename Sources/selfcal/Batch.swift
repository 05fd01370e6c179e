import ArgumentParser
import Foundation
import Imaging
import Logging
import SelfCal

import SelfCalSupport

#if canImport(Glibc)
import Glibc
#endif

struct Batch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Self-calibrate many Measurement Sets with one base config, locally or as a Slurm job array.",
        subcommands: [BatchRun.self, BatchStatus.self, BatchCancel.self],
        defaultSubcommand: BatchRun.self)
}

struct BatchRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run (or resume) a batch.")

    @Argument(help: "The base JSON config.") var config: String
    @Argument(help: "Measurement Sets, globs, or directories holding *.ms.") var inputs: [String] = []
    @Option(help: "A file listing one MS per line (# starts a comment).") var manifest: String?
    @Option(help: "Where the batch keeps its state and each MS's outputs.") var batchDir: String = "selfcal-batch"
    @Flag(help: "Run on this machine.") var local = false
    @Option(help: "At most this many runs at once (--local).") var jobs: Int = 1
    @Flag(help: "Submit one Slurm job array.") var slurm = false
    @Option(help: "Slurm partition.") var partition: String?
    @Option(help: "Slurm time limit per task (e.g. 01:00:00).") var time: String?
    @Option(help: "CPUs per task.") var cpusPerTask: Int = 2
    @Option(help: "Memory per task (e.g. 4G).") var mem: String = "4G"
    @Option(name: .customLong("sbatch-arg"), help: "An extra sbatch option (repeatable).") var sbatchArgs: [String] = []
    @Flag(help: "Follow the Slurm array to its end and write the summary.") var wait = false
    @Option(help: "Attempts per MS before it is left failed.") var maxAttempts: Int = 2

    func run() async throws {
        var exit: Int32 = 0
        try await runReportingErrors {
            guard local != slurm else { throw PipelineError(.badConfig, "choose one of --local or --slurm", context: "selfcal batch") }
            guard jobs >= 1 else { throw PipelineError(.badConfig, "must be ≥ 1", context: "--jobs") }
            guard maxAttempts >= 1 else { throw PipelineError(.badConfig, "must be ≥ 1", context: "--max-attempts") }
            let configPath = absolute(config)
            _ = try SelfCalConfig.load(path: configPath)
            let msPaths = try collectMeasurementSets(inputs: inputs, manifest: manifest)
            let dir = absolute(batchDir)
            guard !msPaths.isEmpty || FileManager.default.fileExists(atPath: BatchPlan.path(dir)) else {
                throw PipelineError(.badConfig, "no Measurement Sets given (arguments, --manifest, or a directory of *.ms)", context: "selfcal batch")
            }
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var plan = try BatchPlan.make(dir: dir, config: configPath, msPaths: msPaths, mode: local ? "local" : "slurm", maxAttempts: maxAttempts)
            let logger = try makeRunLogger(logFile: (dir as NSString).appendingPathComponent("batch.log"))
            let exe = selfExecutable()
            if local {
                plan.localPID = getpid()
                try plan.save(dir)
                let todo = entriesToRun(plan)
                say("batch: \(plan.entries.count) MS, \(todo.count) to run, \(jobs) at a time")
                let batch = LocalBatch(selfcal: exe, jobs: jobs, taskTimeout: .seconds(24 * 3600), logger: logger)
                var p = plan
                do {
                    p = try await withSignalsAsCancellation { [p] in
                        var q = p
                        try await batch.run(&q, dir: dir) { line in say("batch: \(line)") }
                        return q
                    }
                } catch let e as PipelineError where e.code == .interrupted {
                    exit = 130
                } catch is CancellationError {
                    exit = 130
                }
                p = (try? BatchPlan.load(dir)) ?? p
                p.localPID = nil
                try p.save(dir)
                plan = p
            } else {
                let todo = entriesToRun(plan)
                let slurmDir = URL(fileURLWithPath: dir).appendingPathComponent("slurm")
                try FileManager.default.createDirectory(at: slurmDir, withIntermediateDirectories: true)
                let manifestPath = slurmDir.appendingPathComponent("manifest.tsv").path
                try plan.entries.map { "\($0.ms)\t\($0.outputDir)" }.joined(separator: "\n").appending("\n")
                    .write(toFile: manifestPath, atomically: true, encoding: .utf8)
                let script = slurmDir.appendingPathComponent("task.sh").path
                try slurmTaskScript(selfcal: exe, config: configPath, manifest: manifestPath).write(toFile: script, atomically: true, encoding: .utf8)
                chmod(script, 0o755)
                let slurmAPI = Slurm(runner: ProcessRunner(logger: logger), scratch: slurmDir)
                if todo.isEmpty {
                    say("batch: nothing left to run")
                } else {
                    var options = ["--job-name=selfcal-batch", "--output=\(slurmDir.path)/task-%a.log", "--cpus-per-task=\(cpusPerTask)",
                                   "--mem=\(mem)", "--kill-on-invalid-dep=yes", "--signal=TERM@60"]
                    if let partition { options.append("--partition=\(partition)") }
                    if let time { options.append("--time=\(time)") }
                    options += sbatchArgs
                    let id = try await slurmAPI.submit(script: script, indices: todo.map(\.index), options: options)
                    for e in todo { plan.attempts[e.ms, default: 0] += 1 }
                    plan.slurmJobIDs.append(id)
                    try plan.save(dir)
                    say("batch: submitted Slurm job array \(id) with \(todo.count) task(s); follow it with `selfcal batch status \(dir)`")
                    if wait {
                        do {
                            try await withSignalsAsCancellation { [slurmAPI] in
                                var last = ""
                                while true {
                                    let states = try await slurmAPI.states(jobID: id)
                                    let line = states.isEmpty ? "done" : Dictionary(grouping: states.values, by: { $0 }).map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")
                                    if line != last { say("batch: \(line)"); last = line }
                                    if states.isEmpty { return }
                                    try await Task.sleep(for: .seconds(1))
                                }
                            }
                        } catch {
                            say("batch: interrupted: cancelling job \(id)")
                            try? await slurmAPI.cancel(jobID: id)
                            exit = 130
                        }
                    }
                }
            }
            let summary = BatchSummary.collect(plan)
            try summary.write(to: dir)
            writeBatchReport(dir)
            printSummary(summary, dir: dir)
            if exit == 0 && (local || wait) && !summary.allSucceeded { exit = 4 }
        }
        if exit != 0 { throw ExitCode(exit) }
    }
}

struct BatchStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show each MS's state (from Slurm and its report) and refresh the summary.")
    @Argument(help: "The batch directory.") var dir: String

    func run() async throws {
        try await runReportingErrors {
            let d = absolute(dir)
            let plan = try BatchPlan.load(d)
            var scheduler: [Int: String] = [:]
            if let id = plan.slurmJobIDs.last {
                scheduler = (try? await slurmClient(d).states(jobID: id)) ?? [:]
            } else if let pid = plan.localPID, kill(pid, 0) == 0 {
                for e in entriesToRun(plan) { scheduler[e.index] = "queued" }
            }
            let summary = BatchSummary.collect(plan, scheduler: scheduler)
            try summary.write(to: d)
            writeBatchReport(d)
            printSummary(summary, dir: d)
        }
    }
}

struct BatchCancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Stop a batch: scancel its Slurm array, or signal the local batch.")
    @Argument(help: "The batch directory.") var dir: String

    func run() async throws {
        try await runReportingErrors {
            let d = absolute(dir)
            let plan = try BatchPlan.load(d)
            let slurmAPI = slurmClient(d)
            for id in plan.slurmJobIDs {
                let live = (try? await slurmAPI.states(jobID: id)) ?? [:]
                if live.isEmpty { continue }
                try await slurmAPI.cancel(jobID: id)
                say("batch: cancelled Slurm job \(id) (\(live.count) task(s))")
                // Wait until Slurm has stopped them (selfcal gets SIGTERM and cleans up).
                let deadline = Date().addingTimeInterval(90)
                while Date() < deadline, !((try? await slurmAPI.states(jobID: id)) ?? [:]).isEmpty {
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
            if let pid = plan.localPID, kill(pid, 0) == 0 {
                kill(pid, SIGTERM)
                let deadline = Date().addingTimeInterval(90)
                while Date() < deadline && kill(pid, 0) == 0 { try await Task.sleep(for: .milliseconds(200)) }
                say("batch: stopped the local batch (pid \(pid))")
            }
            let summary = BatchSummary.collect(try BatchPlan.load(d))
            try summary.write(to: d)
            printSummary(summary, dir: d)
        }
    }
}

func printSummary(_ s: BatchSummary, dir: String) {
    for e in s.entries {
        let snr = e.initialSnr.map { String(format: "SNR %.1f → %.1f", $0, e.finalSnr ?? 0) } ?? ""
        say(String(format: "  %-40@ %-15@ %@%@", (e.ms as NSString).lastPathComponent, e.status, snr, e.error.map { "  error: \($0)" } ?? ""))
    }
    say("batch: \(s.succeeded) succeeded, \(s.failed) failed, \(s.pending) pending; summary in \((dir as NSString).appendingPathComponent("batch-summary.json"))")
}

/// `batch-report.html` beside the summary; a failure to write it never fails the batch.
func writeBatchReport(_ dir: String) {
    do {
        let path = try HTMLReport.writeBatch(batchDir: dir)
        FileHandle.standardError.write(Data("batch report: \(path)\n".utf8))
    } catch {
        FileHandle.standardError.write(Data("selfcal: warning: batch-report.html not written: \(error)\n".utf8))
    }
}

/// The Slurm client `batch status` and `batch cancel` use on a batch directory.
func slurmClient(_ batchDir: String) -> Slurm {
    Slurm(runner: ProcessRunner(logger: Logger(label: "selfcal.batch")), scratch: URL(fileURLWithPath: batchDir))
}

func absolute(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.path }

/// This executable's path, for child runs.
func selfExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// MS paths from arguments (paths, globs, directories of *.ms) and a manifest file.
func collectMeasurementSets(inputs: [String], manifest: String?) throws -> [String] {
    var out: [String] = []
    var items = inputs
    if let manifest {
        guard let text = try? String(contentsOfFile: manifest, encoding: .utf8) else {
            throw PipelineError(.badConfig, "cannot read the manifest", context: manifest)
        }
        items += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }
    for item in items {
        if item.contains("*") || item.contains("?") {
            var g = glob_t()
            defer { globfree(&g) }
            if glob(item, 0, nil, &g) == 0 {
                for i in 0..<Int(g.gl_pathc) { if let p = g.gl_pathv[i] { out.append(absolute(String(cString: p))) } }
            }
            continue
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: item, isDirectory: &isDir), isDir.boolValue,
           !FileManager.default.fileExists(atPath: item + "/table.dat") {
            let children = try FileManager.default.contentsOfDirectory(atPath: item).filter { $0.hasSuffix(".ms") }.sorted()
            out += children.map { absolute((item as NSString).appendingPathComponent($0)) }
        } else {
            out.append(absolute(item))
        }
    }
    var seen = Set<String>()
    return out.filter { seen.insert($0).inserted }
}
