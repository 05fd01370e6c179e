import ArgumentParser
import Foundation
import Imaging
import Logging
import SelfCal
import SelfCalSupport

/// `selfcal doctor`: what selfcal can use on this machine, and the command that fixes what is
/// missing. Every probe is bounded by `--probe-timeout`; the checks run side by side.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check casacore, WSClean, the container engines and Slurm; say what is missing and how to get it.",
        discussion: "Exit 0 when the essentials work (casacore, and WSClean natively or in a container image), else 4.")

    @Option(help: "The WSClean to check instead of the one on PATH (executor.wsclean_path).") var wscleanPath: String?
    @Option(help: "The container image to look for (executor.image).") var image = "selfcal-wsclean:latest"
    @Option(help: "Seconds each probe may take.") var probeTimeout: Double = 5

    func run() async throws {
        guard probeTimeout > 0 else { throw ValidationError("--probe-timeout must be positive") }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("selfcal-doctor-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        var logger = Logger(label: "selfcal.doctor")
        logger.logLevel = .warning
        let probe = DoctorProbe(scratch: scratch, timeout: .seconds(probeTimeout), runner: ProcessRunner(logger: logger), logger: logger)

        async let casacore = probe.casacore()
        async let wsclean = probe.wsclean(path: wscleanPath)
        async let docker = probe.engine(.docker, image: image)
        async let podman = probe.engine(.podman, image: image)
        async let slurm = probe.slurm()
        let findings = await [casacore, wsclean, docker, podman, slurm]

        print("selfcal doctor")
        for finding in findings { print(finding.rendered) }
        let nativeOK = findings[1].status == .ok
        let containerOK = findings[2].status == .ok || findings[3].status == .ok
        let essentials = findings[0].status == .ok && (nativeOK || containerOK)
        if essentials {
            let how = nativeOK ? "native WSClean (executor.kind auto → native)"
                : "WSClean in a \(findings[2].status == .ok ? "docker" : "podman") container (executor.kind auto → container)"
            print("essentials: ok — selfcal can image with \(how)")
        } else {
            let missing = findings[0].status == .ok ? "WSClean (natively, or a container engine with the image)" : "casacore"
            print("essentials: missing \(missing) — see the fixes above")
            throw ExitCode(PipelineError.Code.toolFailed.rawValue)
        }
    }
}

/// One line of the doctor's report.
struct Finding: Sendable {
    enum Status: String, Sendable { case ok, missing, broken }
    var name: String
    var status: Status
    var detail: String
    var fix: String?

    var rendered: String {
        let tag = "[\(status.rawValue)]".padding(toLength: 10, withPad: " ", startingAt: 0)
        var text = "  \(tag)\(name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(detail)"
        if let fix, status != .ok { text += "\n            fix: \(fix)" }
        return text
    }
}

/// The probes behind `selfcal doctor`, each bounded by `timeout`.
struct DoctorProbe: Sendable {
    let scratch: URL
    let timeout: Duration
    let runner: ProcessRunner
    let logger: Logger

    /// Writes and reads back a tiny MS: the casacore libraries and table system work.
    func casacore() -> Finding {
        let installFix = "scripts/install-deps.sh (apt-get install casacore-dev casacore-data)"
        let start = ContinuousClock.now
        do {
            var options = SimulationOptions(preset: .small)
            options.integrations = 2
            options.channels = 2
            let result = try Simulator.run(msPath: scratch.appendingPathComponent("doctor.ms").path, options: options)
            let ms = try MeasurementSet(path: result.msPath)
            guard ms.rowCount == result.rows else {
                return Finding(name: "casacore", status: .broken, detail: "a test MS read back \(ms.rowCount) rows of \(result.rows)", fix: installFix)
            }
        } catch {
            return Finding(name: "casacore", status: .broken, detail: "writing a test MS failed: \(error)", fix: installFix)
        }
        let elapsed = String(format: "%.2f", (ContinuousClock.now - start).seconds)
        let data = "/usr/share/casacore/data"
        let measures = FileManager.default.fileExists(atPath: data) ? "measures data in \(data)" : "no measures data in \(data) (apt-get install casacore-data)"
        return Finding(name: "casacore", status: .ok, detail: "tables written and read back (a test MS in \(elapsed) s); \(measures)")
    }

    func wsclean(path: String?) async -> Finding {
        let fix = "apt-get install wsclean (or scripts/install-deps.sh); or set executor.wsclean_path; or use executor.kind container"
        guard let executable = path ?? findExecutable("wsclean") else {
            return Finding(name: "wsclean", status: .missing, detail: "not on PATH", fix: fix)
        }
        let output = await run(executable, ["--version"])
        guard let output, output.result.succeeded || output.text.contains("WSClean version") else {
            let why = output.map { "\($0.result.outcome): \($0.text.suffix(300))" } ?? "could not be started"
            return Finding(name: "wsclean", status: .broken, detail: "\(executable) --version failed (\(why))", fix: fix)
        }
        let version = output.text.split(separator: "\n").first { $0.contains("WSClean version") }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "version unknown"
        return Finding(name: "wsclean", status: .ok, detail: "\(executable) — \(version)")
    }

    func engine(_ engine: ContainerEngine, image: String) async -> Finding {
        let name = engine.rawValue
        let install = "SELFCAL_WITH_CONTAINERS=1 scripts/install-deps.sh"
        let client: ContainerEngineClient
        do {
            client = try ContainerEngineClient(engine: engine, callTimeout: timeout, runner: runner, logDirectory: scratch, logger: logger)
        } catch {
            return Finding(name: name, status: .missing, detail: "the \(name) client is not on PATH", fix: install)
        }
        let version: String
        do {
            version = try await client.probeDaemon(deadline: timeout, probeTimeout: min(timeout, .seconds(3)))
        } catch {
            let fix = engine == .docker
                ? "scripts/start-dockerd.sh (or systemctl start docker)"
                : "export CONTAINERS_CONF=$PWD/scripts/podman-containers.conf (the settings this machine needs), then podman info"
            return Finding(name: name, status: .broken, detail: "client \(client.executable); \(engine == .docker ? "the daemon does not answer" : "podman info fails"): \(error.message.prefix(300))", fix: fix)
        }
        let present: Bool
        do {
            present = try await client.imageExists(image)
        } catch {
            return Finding(name: name, status: .broken, detail: "client \(client.executable); server \(version); looking up \(image) failed: \(error.message.prefix(300))", fix: "check `\(name) images`")
        }
        let base = "client \(client.executable); server \(version) answers"
        guard present else {
            return Finding(name: name, status: .missing, detail: "\(base); image \(image) not built", fix: "scripts/build-wsclean-image.sh --engine \(name)")
        }
        // Podman's `info` works where its containers cannot start (ulimits, --init): try one.
        if let problem = await client.trialRun(image: image) {
            let said = problem.suffix(300)
            let fix = engine == .podman
                ? "export CONTAINERS_CONF=$PWD/scripts/podman-containers.conf (the settings this machine needs)"
                : "check `docker run --rm --init \(image) true`; rebuild with scripts/build-wsclean-image.sh --engine docker --force"
            return Finding(name: name, status: .broken, detail: "\(base); image \(image) present, but a container does not start: \(said)", fix: fix)
        }
        return Finding(name: name, status: .ok, detail: "\(base); image \(image) present; a container starts")
    }

    func slurm() async -> Finding {
        let install = "SELFCAL_WITH_SLURM=1 scripts/install-deps.sh, then start slurmctld and slurmd (ENVIRONMENT.md has a single-node configuration)"
        let missing = ["sbatch", "squeue", "scontrol"].filter { findExecutable($0) == nil }
        guard missing.isEmpty else {
            return Finding(name: "slurm", status: .missing, detail: "\(missing.joined(separator: ", ")) not on PATH (only `selfcal batch --slurm` needs Slurm)", fix: install)
        }
        let output = await run("scontrol", ["ping"])
        guard let output, output.result.succeeded, output.text.contains("UP") else {
            let said = output.map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines).suffix(300) } ?? ""
            return Finding(name: "slurm", status: .broken, detail: "sbatch and squeue found; the controller is not reachable (`scontrol ping`: \(output.map { "\($0.result.outcome)" } ?? "not started") \(said))",
                           fix: "start slurmctld and slurmd with SLURM_CONF exported (ENVIRONMENT.md)")
        }
        return Finding(name: "slurm", status: .ok, detail: output.text.split(separator: "\n").first.map(String.init) ?? "controller up")
    }

    // MARK: Helpers

    struct Output { var result: ProcessResult; var text: String }

    /// Runs a probe command with the deadline; nil when it could not be started.
    private func run(_ executable: String, _ arguments: [String]) async -> Output? {
        let log = scratch.appendingPathComponent("probe-\(UUID().uuidString).log")
        guard let result = try? await runner.run(ProcessSpec(executable, arguments: arguments, logPath: log, timeout: timeout, grace: .seconds(1))) else {
            return nil
        }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? result.outputTail
        return Output(result: result, text: text)
    }
}

