import Foundation
import Testing
import Worker
import WorkerTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The checkout's root (this file is Tests/WorkerTests/DeploymentTests.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// `KEY=VALUE` lines of a systemd unit's section, in order (comments and blank lines skipped).
func unitSection(_ text: String, _ section: String) -> [(String, String)] {
    var current = ""
    var entries: [(String, String)] = []
    for raw in text.split(separator: "\n") {
        let line = raw.trimmingCharacters(in: .whitespaces)
        if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
        if line.hasPrefix("[") { current = String(line.dropFirst().dropLast()); continue }
        guard current == section, let equals = line.firstIndex(of: "=") else { continue }
        entries.append((String(line[..<equals]), String(line[line.index(after: equals)...])))
    }
    return entries
}

/// The variables an environment file sets (`KEY=VALUE` lines, comments skipped).
func environmentFile(_ text: String) -> [String: String] {
    var values: [String: String] = [:]
    for raw in text.split(separator: "\n") {
        let line = raw.trimmingCharacters(in: .whitespaces)
        guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
        values[String(line[..<equals])] = String(line[line.index(after: equals)...])
    }
    return values
}

/// Seconds of a systemd time span such as `90`, `90s`, `2min`, `1min 30s`.
func systemdSeconds(_ text: String) -> Double? {
    var total = 0.0
    for part in text.split(separator: " ") {
        let digits = part.prefix { $0.isNumber || $0 == "." }
        guard let value = Double(digits) else { return nil }
        switch part.dropFirst(digits.count) {
        case "", "s", "sec": total += value
        case "min", "m": total += value * 60
        case "h": total += value * 3600
        case "ms": total += value / 1000
        default: return nil
        }
    }
    return total
}

/// deploy/mesh-worker.service and its environment file, as an operator installs them.
@Suite struct DeploymentTests {
    let unit = try! String(contentsOf: repositoryRoot.appendingPathComponent("deploy/mesh-worker.service"), encoding: .utf8)
    let environment = try! String(contentsOf: repositoryRoot.appendingPathComponent("deploy/mesh-worker.env"), encoding: .utf8)

    func service(_ key: String) -> String? { unitSection(unit, "Service").last { $0.0 == key }?.1 }

    @Test func theUnitRestartsOnFailureAsAnUnprivilegedHardenedUser() {
        #expect(service("Restart") == "on-failure")
        #expect(service("User").map { !$0.isEmpty && $0 != "root" && $0 != "0" } == true)
        #expect(service("EnvironmentFile")?.hasSuffix("mesh-worker.env") == true)
        #expect(service("ExecStart")?.hasSuffix("/mesh-worker") == true)
        #expect(service("KillSignal") == "SIGTERM")
        for (key, value) in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                             ("PrivateTmp", "yes"), ("CapabilityBoundingSet", "")] {
            #expect(service(key) == value, "\(key)")
        }
        #expect(unitSection(unit, "Install").contains { $0 == ("WantedBy", "multi-user.target") })
    }

    /// Every variable of the sample environment file is a setting the worker documents, the values
    /// parse, and the stop timeout leaves the drain its grace plus the settling time.
    @Test func theEnvironmentFileIsValidAndTheStopTimeoutCoversTheDrain() throws {
        let values = environmentFile(environment)
        #expect(values["AMQP_URL"] != nil && values["UPLOADS_ROOT"] != nil)
        let help = try runCommand(try meshWorkerExecutable().path, ["--help"])
        for key in values.keys {
            #expect(help.contains(key), "\(key) is not a documented setting")
        }
        let configuration = try MeshWorkerOptions.parse([]).configuration(environment: values)
        let timeout = try #require(service("TimeoutStopSec").flatMap(systemdSeconds))
        // The drain: the grace for running jobs, up to 5 s for settling publishes, closing the connection.
        #expect(timeout >= configuration.drainGrace + 5 + 10, "TimeoutStopSec \(timeout) s cuts a \(configuration.drainGrace) s drain short")
        // The uploads root must be writable under ProtectSystem=strict: the state directory or ReadWritePaths.
        let writable = ["/var/lib/" + (service("StateDirectory") ?? "-")]
            + (service("ReadWritePaths")?.split(separator: " ").map(String.init) ?? [])
        #expect(writable.contains { configuration.uploadsRoot.path.hasPrefix($0) }, "\(configuration.uploadsRoot.path)")
    }

    /// systemd's own check of the unit (with ExecStart pointed at the built executable, which it
    /// requires to exist): no unknown keys, no values it cannot parse.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")))
    func systemdAnalyzeAcceptsTheUnit() throws {
        let executable = try meshWorkerExecutable().path
        let lines = unit.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix("ExecStart=") ? "ExecStart=\(executable)" : String(line)
        }
        let directory = temporaryDirectory("unit")
        let copy = directory.appendingPathComponent("mesh-worker.service")
        try lines.joined(separator: "\n").write(to: copy, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        process.arguments = ["verify", copy.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        // verify exits 0 even for keys it ignores; it says so, though.
        #expect(text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(text)")
    }
}
