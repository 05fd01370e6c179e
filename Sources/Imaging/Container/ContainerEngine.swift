import Foundation
import Logging
import SelfCalSupport

/// A container engine selfcal drives through its command-line client.
public enum ContainerEngine: String, Sendable, CaseIterable, Codable {
    case docker
    case podman

    /// The command name of the daemon process whose death ends a wait for it; podman has none.
    var daemonProcessName: String? { self == .docker ? "dockerd" : nil }

    /// What to do when the engine does not answer, for error messages.
    var startHint: String {
        switch self {
        case .docker:
            "start the daemon (scripts/start-dockerd.sh, or systemctl start docker) or fix DOCKER_HOST"
        case .podman:
            "check `podman info` (rootful podman here needs CONTAINERS_CONF with the settings in ENVIRONMENT.md)"
        }
    }

    /// `info --format` that prints the server's version.
    var versionFormat: String { self == .docker ? "{{.ServerVersion}}" : "{{.Version.Version}}" }

    /// The package that provides the client, for error messages.
    var installHint: String {
        "install it: SELFCAL_WITH_CONTAINERS=1 scripts/install-deps.sh (apt-get install \(self == .docker ? "docker.io" : "podman tini"))"
    }
}

/// What the engine says about a container.
public enum ContainerState: Sendable, Equatable, CustomStringConvertible {
    case running
    /// It exists but does not run (exited, created, dead, ...): the engine's status word.
    case stopped(String)
    case missing

    public var description: String {
        switch self {
        case .running: "running"
        case .stopped(let status): "not running (\(status))"
        case .missing: "missing"
        }
    }
}

/// One container as `listContainers(label:)` sees it.
public struct ContainerInfo: Sendable, Equatable {
    public var id: String
    public var name: String
    public var labels: [String: String]
}

/// The client of one container engine (`docker` or `podman`). Every call goes through
/// `ProcessRunner` with a deadline (`callTimeout` unless a call says otherwise), so that no wait
/// on the engine is unbounded; the output of every call is appended to
/// `<logDirectory>/container-engine.log`.
///
/// What can go wrong: the client is missing (`init` throws `.badConfig`); a call does not end
/// within its deadline (`.toolFailed`, naming the command); the daemon does not answer
/// (`probeDaemon` throws `.toolFailed` within its deadline).
public struct ContainerEngineClient: Sendable {
    public let engine: ContainerEngine
    /// The client executable, resolved.
    public let executable: String
    /// Set for every engine call, on top of selfcal's environment (`DOCKER_HOST`, `CONTAINERS_CONF`).
    public let environment: [String: String]
    /// The deadline of one engine call.
    public let callTimeout: Duration
    public let logDirectory: URL
    /// The command name of the local daemon process that `probeDaemon` watches (`dockerd`; nil
    /// for podman, which has none).
    var daemonProcessName: String?
    let runner: ProcessRunner
    let logger: Logger

    /// Finds the client (`executable` if given, else the engine's name in PATH, the PATH in
    /// `environment` first). Throws `.badConfig` naming the fix when it is not there.
    public init(
        engine: ContainerEngine, executable: String? = nil, environment: [String: String] = [:],
        callTimeout: Duration = .seconds(30), runner: ProcessRunner, logDirectory: URL,
        logger: Logger = Logger(label: "selfcal.container")
    ) throws(PipelineError) {
        self.engine = engine
        if let executable {
            guard Syscall.isExecutableFile(executable) else {
                throw PipelineError(.badConfig, "the \(engine.rawValue) client \(executable) is not an executable file; \(engine.installHint)", context: "executor.engine")
            }
            self.executable = executable
        } else if let found = findExecutable(engine.rawValue, searchPath: environment["PATH"]) {
            self.executable = found
        } else {
            throw PipelineError(.badConfig, "the \(engine.rawValue) client was not found in PATH; \(engine.installHint), or use executor.kind native", context: "executor.engine")
        }
        self.environment = environment
        self.daemonProcessName = engine.daemonProcessName
        self.callTimeout = callTimeout
        self.runner = runner
        self.logDirectory = logDirectory
        self.logger = logger
    }

    /// The log every engine call appends to.
    public var logPath: URL { logDirectory.appendingPathComponent("container-engine.log") }

    // MARK: Calls

    /// The end of one engine call and everything it printed (stdout and stderr, at most 1 MiB).
    struct Output: Sendable {
        var result: ProcessResult
        var text: String
        var succeeded: Bool { result.succeeded }
        /// The output without surrounding blank space, for messages.
        var trimmed: String { text.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// Runs `<client> arguments...` with a deadline; the output goes to a scratch file that is
    /// read whole, then appended to the engine log. Throws only when the client could not be
    /// started, or `.interrupted` when the task was cancelled before it started.
    func call(_ arguments: [String], timeout: Duration? = nil) async throws(PipelineError) -> Output {
        do {
            try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
        } catch {
            throw PipelineError(.badConfig, "cannot create the log directory for container engine calls: \(error)", context: logDirectory.path)
        }
        let scratch = logDirectory.appendingPathComponent(".engine-call-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let spec = ProcessSpec(
            executable, arguments: arguments, environment: environment, logPath: scratch,
            timeout: timeout ?? callTimeout, grace: .seconds(1))
        let result = try await runner.run(spec)
        let text = (try? Syscall.readWholeFile(scratch.fileSystemPath, limit: 1 << 20))
            .map { String(decoding: $0, as: UTF8.self) } ?? ""
        appendToLog("$ \(spec.commandLine)\n\(text)\(text.hasSuffix("\n") || text.isEmpty ? "" : "\n")[\(result.outcome), \(formatSeconds(result.duration))]\n")
        return Output(result: result, text: text)
    }

    private func appendToLog(_ entry: String) {
        try? Syscall.append(Array(entry.utf8), to: logPath.fileSystemPath)
    }

    /// A thrown error for an engine call that did not succeed.
    func failure(_ what: String, _ output: Output, code: PipelineError.Code = .toolFailed) -> PipelineError {
        if output.result.outcome == .cancelled {
            return PipelineError(.interrupted, "\(what): stopped, selfcal is stopping", context: output.result.commandLine)
        }
        let said = output.trimmed.isEmpty ? "it printed nothing" : "it said: \(output.trimmed.suffix(1500))"
        return PipelineError(code, "\(what) failed (\(engine.rawValue) \(output.result.outcome) after \(formatSeconds(output.result.duration))); \(said)", context: output.result.commandLine)
    }

    // MARK: The daemon

    /// Waits until the engine answers `info`, for at most `deadline`: each probe has its own
    /// `probeTimeout` (cut to what is left of the deadline), and probes are retried with a growing
    /// pause. Returns the server version.
    ///
    /// Ends early with `.badConfig` when the answer cannot change by waiting (permission denied on
    /// the socket), and with `.toolFailed` when the local daemon process was seen and then died.
    /// At the deadline: `.toolFailed` with the last probe's answer and how to start the daemon.
    public func probeDaemon(deadline: Duration, probeTimeout: Duration = .seconds(3)) async throws(PipelineError) -> String {
        let clock = ContinuousClock()
        let start = clock.now
        let end = start + deadline
        var probes = 0
        var pause: Duration = .milliseconds(100)
        var lastAnswer = ""
        var daemonSeen: Set<Int32> = []
        while true {
            probes += 1
            let left = end - clock.now
            let output = try await call(
                ["info", "--format", engine.versionFormat],
                timeout: max(.milliseconds(200), min(probeTimeout, left)))
            if output.result.outcome == .cancelled {
                throw PipelineError(.interrupted, "stopped while waiting for the \(engine.rawValue) daemon", context: output.result.commandLine)
            }
            let version = output.trimmed
            if output.succeeded, !version.isEmpty, !version.contains("<no value>") {
                logger.info("\(engine.rawValue) \(engine == .docker ? "daemon" : "engine") ready (server \(version)) after \(formatSeconds(start.duration(to: clock.now))), \(probes) probe(s)")
                return version
            }
            lastAnswer = output.trimmed.isEmpty ? "\(output.result.outcome)" : String(output.trimmed.suffix(600))
            if lastAnswer.contains("template:") {
                throw PipelineError(.toolFailed, "`\(engine.rawValue) info` does not know the version field: \(lastAnswer)", context: output.result.commandLine)
            }
            if lastAnswer.lowercased().contains("permission denied") {
                throw PipelineError(.badConfig, "\(engine.rawValue) refused selfcal: \(lastAnswer); run selfcal as a user allowed to use \(engine.rawValue) (the docker group, or root)", context: "executor.engine")
            }
            if let daemon = daemonProcessName, environment["DOCKER_HOST"] == nil,
               ProcessInfo.processInfo.environment["DOCKER_HOST"] == nil {
                let now = Set(ProcFS.processes(named: daemon))
                if !daemonSeen.isEmpty && now.isEmpty {
                    throw PipelineError(.toolFailed, "\(daemon) (pid \(daemonSeen.sorted().map(String.init).joined(separator: ", "))) exited while selfcal waited for it to answer; last answer: \(lastAnswer); \(engine.startHint)", context: "executor.engine")
                }
                daemonSeen.formUnion(now)
            }
            if clock.now + pause >= end { break }
            do {
                try await Task.sleep(for: pause)
            } catch {
                throw PipelineError(.interrupted, "stopped while waiting for the \(engine.rawValue) daemon", context: "executor.engine")
            }
            pause = min(pause * 2, .seconds(1))
        }
        throw PipelineError(
            .toolFailed,
            "the \(engine.rawValue) \(engine == .docker ? "daemon" : "engine") did not answer within \(formatSeconds(deadline)) (\(probes) probe(s) of at most \(formatSeconds(probeTimeout)) each); last answer: \(lastAnswer); \(engine.startHint)",
            context: "executor.engine")
    }

    // MARK: Images and containers

    /// Whether `image` is in the engine's local store.
    public func imageExists(_ image: String) async throws(PipelineError) -> Bool {
        let output = try await call(["image", "inspect", "--format", "{{.Id}}", image])
        switch output.result.outcome {
        case .exited(0): return true
        case .exited: return false
        default: throw failure("looking up image \(image)", output)
        }
    }

    /// Starts and removes a throw-away container of `image` running `true`, the way the executor
    /// starts its own (`--init`, no network, never pulling). Returns nil when that worked, else
    /// what the engine said.
    public func trialRun(image: String) async -> String? {
        guard let output = try? await call(["run", "--rm", "--init", "--network", "none", "--pull", "never", image, "true"]) else {
            return "the \(engine.rawValue) client could not be started"
        }
        return output.succeeded ? nil : (output.trimmed.isEmpty ? "\(output.result.outcome)" : output.trimmed)
    }

    /// What the engine says about container `name`.
    public func state(of name: String) async throws(PipelineError) -> ContainerState {
        let output = try await call(["inspect", "--type", "container", "--format", "{{.State.Running}} {{.State.Status}}", name])
        if output.succeeded {
            let words = output.trimmed.split(separator: " ").map(String.init)
            if words.first == "true" { return .running }
            return .stopped(words.dropFirst().first ?? output.trimmed)
        }
        if case .exited = output.result.outcome, Self.saysNoSuchContainer(output.text) { return .missing }
        throw failure("asking \(engine.rawValue) about container \(name)", output)
    }

    /// Stops container `name`: SIGTERM to its PID 1, SIGKILL after `grace` (`stop -t`).
    /// Returns whether the engine said it did.
    @discardableResult
    public func stop(_ name: String, grace: Duration) async -> Bool {
        let seconds = max(0, Int(grace.seconds.rounded(.up)))
        let output = try? await call(["stop", "-t", String(seconds), name], timeout: callTimeout + grace)
        return output?.succeeded ?? false
    }

    /// SIGKILL to container `name` (`kill`). Returns whether the engine said it did.
    @discardableResult
    public func kill(_ name: String) async -> Bool {
        let output = try? await call(["kill", name])
        return output?.succeeded ?? false
    }

    /// Removes container `name`, running or not (`rm -f`; podman with `-t 0`, else it waits the
    /// stop timeout). A container that does not exist counts as removed. Returns whether it is gone.
    @discardableResult
    public func remove(_ name: String) async -> Bool {
        let arguments = engine == .podman ? ["rm", "-f", "-t", "0", name] : ["rm", "-f", name]
        guard let output = try? await call(arguments) else { return false }
        if output.succeeded { return true }
        if case .exited = output.result.outcome, Self.saysNoSuchContainer(output.text) { return true }
        logger.warning("could not remove container \(name): \(output.trimmed)")
        return false
    }

    /// Every container (running or not) that carries label `key`, with its labels.
    public func listContainers(label key: String) async throws(PipelineError) -> [ContainerInfo] {
        let list = try await call(["ps", "-a", "-q", "--no-trunc", "--filter", "label=\(key)"])
        guard list.succeeded else { throw failure("listing containers labelled \(key)", list) }
        let ids = list.text.split(whereSeparator: \.isWhitespace).map(String.init)
        if ids.isEmpty { return [] }
        let details = try await call(["inspect", "--type", "container", "--format", "{{.Id}}\t{{.Name}}\t{{json .Config.Labels}}"] + ids)
        // A container removed between the two calls makes inspect fail for it only; keep the rest.
        var found: [ContainerInfo] = []
        for line in details.text.split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 2).map(String.init)
            guard fields.count == 3, ids.contains(fields[0]) else { continue }
            let labels = (try? JSONDecoder().decode([String: String].self, from: Data(fields[2].utf8))) ?? [:]
            let name = fields[1].hasPrefix("/") ? String(fields[1].dropFirst()) : fields[1]
            found.append(ContainerInfo(id: fields[0], name: name, labels: labels))
        }
        if found.isEmpty && !details.succeeded { throw failure("inspecting containers labelled \(key)", details) }
        return found
    }

    /// docker: "No such container: x" / "No such object"; podman: "no such container".
    static func saysNoSuchContainer(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.contains("no such container") || lower.contains("no such object")
            || lower.contains("no container with name or id")
    }
}

/// `name` as an executable file in `searchPath` (colon-separated; nil: selfcal's PATH).
public func findExecutable(_ name: String, searchPath: String? = nil) -> String? {
    if name.contains("/") { return Syscall.isExecutableFile(name) ? name : nil }
    let path = searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(name)"
        if Syscall.isExecutableFile(candidate) { return candidate }
    }
    return nil
}
