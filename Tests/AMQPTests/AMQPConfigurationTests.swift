import Testing
@testable import AMQP

@Suite("AMQP URL parsing")
struct AMQPConfigurationTests {
    @Test func defaultURL() throws {
        let c = try AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:5672/")
        #expect(c.host == "127.0.0.1")
        #expect(c.port == 5672)
        #expect(c.virtualHost == "/")
        #expect(c.username == "guest")
        #expect(c.password == "guest")
        #expect(!c.useTLS)
        #expect(c.heartbeat == 30)
    }

    @Test(arguments: [
        ("amqp://h", "/"), ("amqp://h/", "/"), ("amqp://h/%2F", "/"), ("amqp://h/%2f", "/"),
        ("amqp://h/prod", "prod"), ("amqp://h/a%2Fb", "a/b"), ("amqp://h:1234/my%20vhost", "my vhost"),
    ])
    func virtualHost(url: String, expected: String) throws {
        #expect(try AMQPConfiguration(url: url).virtualHost == expected)
    }

    @Test func amqpsDefaultsAndTLSQuery() throws {
        let c = try AMQPConfiguration(url: "amqps://u:p@broker.example:5671/v?cacertfile=/etc/ca.pem&verify=verify_peer&verify_hostname=false&heartbeat=10&connection_timeout=2500&frame_max=65536&connection_name=mesh-worker")
        #expect(c.useTLS)
        #expect(c.port == 5671)
        #expect(c.tls.caCertificateFile == "/etc/ca.pem")
        #expect(c.tls.verifyPeer)
        #expect(!c.tls.verifyHostname)
        #expect(c.heartbeat == 10)
        #expect(c.connectTimeout == .milliseconds(2500))
        #expect(c.frameMax == 65536)
        #expect(c.connectionName == "mesh-worker")
        #expect(try AMQPConfiguration(url: "amqps://broker").port == 5671)
        #expect(try AMQPConfiguration(url: "amqps://broker?verify=verify_none").tls.verifyPeer == false)
    }

    @Test func percentEncodedCredentialsAndIPv6() throws {
        let c = try AMQPConfiguration(url: "amqp://us%40er:p%3Ass%2Fw@[::1]:5673/")
        #expect(c.username == "us@er")
        #expect(c.password == "p:ss/w")
        #expect(c.host == "::1")
        #expect(c.port == 5673)
        #expect(c.redactedURL == "amqp://us%40er@[::1]:5673/%2F")
    }

    @Test func environmentOverridesCredentials() throws {
        let env = ["AMQP_USERNAME": "worker", "AMQP_PASSWORD": "s3cret", "AMQP_URL": "amqp://a:b@10.0.0.1/x"]
        let c = try AMQPConfiguration.fromEnvironment(env)
        #expect(c.username == "worker")
        #expect(c.password == "s3cret")
        #expect(c.host == "10.0.0.1")
        #expect(c.virtualHost == "x")
        let d = try AMQPConfiguration.fromEnvironment([:])
        #expect(d.host == "127.0.0.1" && d.username == "guest")
        // Empty values do not override.
        let e = try AMQPConfiguration(url: "amqp://a:b@h", environment: ["AMQP_USERNAME": "", "AMQP_PASSWORD": ""])
        #expect(e.username == "a" && e.password == "b")
    }

    @Test func passwordNeverInDescription() throws {
        let c = try AMQPConfiguration(url: "amqp://user:hunter2-secret@host/vh?connection_name=w1")
        #expect(!c.description.contains("hunter2"))
        #expect(!String(describing: c).contains("hunter2"))
        #expect(!String(reflecting: AMQPClient(configuration: c)).contains("hunter2"))
        #expect(c.description.contains("user@host:5672/vh"))
        var dumped = ""
        dump(c, to: &dumped)
        #expect(!dumped.contains("hunter2"))
        #expect(dumped.contains("<redacted>"))
        #expect(!"\(AMQPError.authenticationFailed(username: c.username, replyText: "ACCESS_REFUSED"))".contains("hunter2"))
    }

    @Test(arguments: [
        "http://host/", "host:5672", "amqp://h:0/", "amqp://h:99999/", "amqp://h:abc/", "amqp://h/a/b",
        "amqp://h/?heartbeat=x", "amqp://h/?bogus=1", "amqp://h/%zz", "amqp://[::1/", "amqp://h/?verify=maybe",
    ])
    func rejectsBadURLs(url: String) {
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: url) }
    }

    @Test func backoffIsCappedAndJittered() {
        let p = AMQPReconnectPolicy(initialDelay: .milliseconds(500), maxDelay: .seconds(30), multiplier: 2, jitter: 0.2)
        #expect(p.baseDelay(attempt: 1) == .milliseconds(500))
        #expect(p.baseDelay(attempt: 2) == .seconds(1))
        #expect(p.baseDelay(attempt: 4) == .seconds(4))
        #expect(p.baseDelay(attempt: 7) == .seconds(30))
        #expect(p.baseDelay(attempt: 50) == .seconds(30))
        for attempt in 1...12 {
            let d = p.delay(attempt: attempt)
            let base = p.baseDelay(attempt: attempt)
            #expect(d >= base * 0.8 - .milliseconds(1))
            #expect(d <= min(base * 1.2, .seconds(30)) + .milliseconds(1))
        }
    }
}
