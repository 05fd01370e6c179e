import Foundation
import Glibc
import Testing

@testable import Imaging

/// Whether a container engine can be used here, found out once per test process: the engine is
/// started if needed (docker: scripts/start-dockerd.sh), and the WSClean image is built if missing
/// (scripts/build-wsclean-image.sh, idempotent).
///
/// Engine commands in tests go through `ProcessRunner`, not Foundation's `Process`: `podman run -d`
/// leaves conmon holding every descriptor it inherited, and `Process` (which learns of a child's
/// end from a socket the child inherits) would then wait for conmon forever.
enum ContainerSupport {
    static let image = "selfcal-wsclean:latest"
    /// The podman settings this machine needs (ENVIRONMENT.md), checked in beside the scripts.
    static let podmanConf = TestSupport.packageRoot.appendingPathComponent("scripts/podman-containers.conf").path

    /// Environment for the engine's CLI.
    static func environment(_ engine: ContainerEngine) -> [String: String] {
        engine == .podman ? ["CONTAINERS_CONF": podmanConf] : [:]
    }

    /// On CI (`SELFCAL_WITH_CONTAINERS=1`) docker must work: a problem is a failure, not a skip.
    static var required: Bool { ProcessInfo.processInfo.environment["SELFCAL_WITH_CONTAINERS"] == "1" }

    /// Skips the test (saying why) when `engine` cannot be used here; fails it instead when docker
    /// is required.
    static func require(_ engine: ContainerEngine, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        guard let problem = await Availability.shared.problem(engine) else { return }
        if engine == .docker && required {
            Issue.record("SELFCAL_WITH_CONTAINERS=1 but docker cannot be used: \(problem)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        try Test.cancel("\(engine.rawValue) cannot be used here: \(problem)", sourceLocation: sourceLocation)
    }

    /// Each engine's check, run once.
    actor Availability {
        static let shared = Availability()
        private var checks: [ContainerEngine: Task<String?, Never>] = [:]

        func problem(_ engine: ContainerEngine) async -> String? {
            if let check = checks[engine] { return await check.value }
            let check = Task { () -> String? in
                let problem = engine == .docker ? await findDockerProblem() : await findPodmanProblem()
                print("container tests: \(engine.rawValue) \(problem.map { "skipped: \($0)" } ?? "ready")")
                return problem
            }
            checks[engine] = check
            return await check.value
        }
    }

    private static func findDockerProblem() async -> String? {
        guard TestSupport.which("docker") != nil else {
            return "the docker client is not installed (SELFCAL_WITH_CONTAINERS=1 scripts/install-deps.sh)"
        }
        let script = TestSupport.packageRoot.appendingPathComponent("scripts/start-dockerd.sh").path
        let start = await tool(script, ["30"], timeout: 45)
        if start.status != 0 {
            return "scripts/start-dockerd.sh failed (exit \(start.status)): \(start.output.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
        return await buildImage(.docker)
    }

    private static func findPodmanProblem() async -> String? {
        guard TestSupport.which("podman") != nil else {
            return "podman is not installed (SELFCAL_WITH_CONTAINERS=1 scripts/install-deps.sh)"
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tini-static") else {
            return "/usr/bin/tini-static (package tini) is missing; podman needs it for --init here"
        }
        let info = await tool("podman", ["info", "--format", "{{.Version.Version}}"], timeout: 30, environment: environment(.podman))
        guard info.status == 0 else {
            return "`podman info` fails with CONTAINERS_CONF=\(podmanConf): \(info.output.suffix(500))"
        }
        if let problem = await buildImage(.podman) { return problem }
        let probe = await tool("podman", ["run", "--rm", "--init", "--network", "none", image, "true"], timeout: 60, environment: environment(.podman))
        guard probe.status == 0 else {
            return "`podman run --rm --init \(image) true` fails: \(probe.output.suffix(500))"
        }
        return nil
    }

    private static func buildImage(_ engine: ContainerEngine) async -> String? {
        guard TestSupport.which("wsclean") != nil else { return "WSClean is not installed here, so its image cannot be built" }
        let script = TestSupport.packageRoot.appendingPathComponent("scripts/build-wsclean-image.sh").path
        let build = await tool(script, ["--engine", engine.rawValue], timeout: 180, environment: environment(engine))
        if build.status != 0 { return "scripts/build-wsclean-image.sh failed: \(build.output.suffix(800))" }
        return nil
    }
}

/// Runs a command through `ProcessRunner` with a deadline; status -1 when it did not exit by itself
/// (or could not start).
func tool(_ executable: String, _ arguments: [String], timeout: Double = 30,
          environment: [String: String] = [:]) async -> TestSupport.ToolResult {
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("selfcal-test-tool-\(UUID().uuidString).log")
    defer { try? FileManager.default.removeItem(at: log) }
    let spec = ProcessSpec(executable, arguments: arguments, environment: environment, logPath: log,
                           timeout: .seconds(timeout), grace: .seconds(2))
    guard let result = try? await ProcessRunner().run(spec) else {
        return TestSupport.ToolResult(status: -1, output: "\(executable) could not be started")
    }
    let output = (try? String(contentsOf: log, encoding: .utf8)) ?? result.outputTail
    if case .exited(let code) = result.outcome { return TestSupport.ToolResult(status: code, output: output) }
    return TestSupport.ToolResult(status: -1, output: "\(result.outcome): \(output)")
}

/// One executor test's world: a fresh directory (mounted at `/work-<token>` in the container), the
/// fault scripts (at `/faults`, read-only), a unique token that names the container and marks
/// every process of the test, and checks that nothing is left.
final class ExecutorFixture: Sendable {
    let engine: ContainerEngine?
    let dir: URL
    let token: String
    let log: URL

    init(engine: ContainerEngine?) throws {
        self.engine = engine
        token = "t\(getpid())-\(UUID().uuidString.prefix(8).lowercased())"
        dir = try TestSupport.tempDir("executor-\(token)")
        log = dir.appendingPathComponent("wsclean.log")
    }

    var containerPath: String { "/work-\(token)" }
    var containerName: String { "selfcal-\(token)" }

    static func faultScript(_ name: String) -> String {
        TestSupport.testsDir.appendingPathComponent("FaultScripts/wsclean/\(name)").path
    }

    /// Removes the directory. (The container is removed by the test's `shutdown`, and checked.)
    func cleanup() {
        TestSupport.cleanup(dir)
    }

    /// WSClean options writing `<dir>/<name>`.
    func options(_ name: String) -> WSCleanOptions {
        WSCleanOptions(name: dir.appendingPathComponent(name).path, size: 64, scaleArcsec: 10)
    }

    func containerExecutor(wsclean: String, limits: ExecutorLimits) throws -> ContainerWSCleanExecutor {
        let engine = try #require(engine)
        var config = ContainerExecutorConfig(
            engine: engine, image: ContainerSupport.image,
            mounts: [ContainerMount(host: dir.path, container: containerPath),
                     ContainerMount(host: TestSupport.testsDir.appendingPathComponent("FaultScripts").path, container: "/faults", readOnly: true)],
            user: .host)
        config.wscleanPath = wsclean
        config.runID = token
        config.environment = ContainerSupport.environment(engine)
        config.logDirectory = dir
        config.daemonTimeout = .seconds(20)
        return try ContainerWSCleanExecutor(config: config, limits: limits, runner: ProcessRunner())
    }

    /// Runs `body`, then shuts the executor down whether or not `body` threw.
    @discardableResult
    func finally<T>(_ executor: ContainerWSCleanExecutor, _ body: () async throws -> T) async throws -> T {
        do {
            let value = try await body()
            await executor.shutdown()
            await executor.shutdown()  // a second call is harmless
            return value
        } catch {
            await executor.shutdown()
            throw error
        }
    }

    /// Live processes (not zombies) whose command line mentions this test's directory, its
    /// path inside the container, or (`anyOfTheRun`) its token at all: exec clients, stand-ins and
    /// their helpers, inside or outside the container.
    func processes(anyOfTheRun: Bool = false) -> [String] {
        let markers = anyOfTheRun ? [token] : [dir.path, containerPath]
        var found: [String] = []
        let me = getpid()
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != me,
                  let stat = ProcFS.stat(pid), !stat.isZombie,
                  let argv = ProcFS.commandLine(pid) else { continue }
            let line = argv.joined(separator: " ")
            if markers.contains(where: line.contains) { found.append("\(pid): \(line)") }
        }
        return found
    }

    /// `docker`/`podman` with this test's environment.
    func engineCLI(_ arguments: [String]) async throws -> TestSupport.ToolResult {
        let engine = try #require(engine)
        return await tool(engine.rawValue, arguments, timeout: 30, environment: ContainerSupport.environment(engine))
    }

    /// The container's status word (`running`, `exited`, ...), or "missing".
    func containerState() async throws -> String {
        let r = try await engineCLI(["inspect", "--type", "container", "--format", "{{.State.Status}}", containerName])
        return r.status == 0 ? r.output.trimmingCharacters(in: .whitespacesAndNewlines) : "missing"
    }

    /// After shutdown: no container labelled with this run, and no process of it.
    func expectNothingLeft(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let list = try await engineCLI(["ps", "-a", "--filter", "label=selfcal.run=\(token)", "--format", "{{.Names}}"])
        #expect(list.status == 0, "\(list.output)", sourceLocation: sourceLocation)
        let left = list.output.split(whereSeparator: \.isWhitespace).map(String.init)
        #expect(left.isEmpty, "containers left: \(left)", sourceLocation: sourceLocation)
        for name in left { _ = try await engineCLI(["rm", "-f", name]) }  // so one failure leaves nothing behind
        // A removed container's processes die at once, but give their reaping a moment.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(3)
        while !processes(anyOfTheRun: true).isEmpty && clock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(processes(anyOfTheRun: true).isEmpty, "processes left: \(processes(anyOfTheRun: true))", sourceLocation: sourceLocation)
    }
}

/// Progress percentages reported by an executor, collected across threads.
final class Percentages: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int] = []

    func add(_ value: Int) { lock.withLock { items.append(value) } }
    var values: [Int] { lock.withLock { items } }
}

