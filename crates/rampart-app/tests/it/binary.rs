//! The built binary: configuration errors, commands and serving.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rampart-app");

/// The binary in `dir`, with only the given environment.
fn command(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("SECURITY_ARGON2_MEMORY_KIB", "1024")
        .env("SECURITY_ARGON2_ITERATIONS", "1")
        .env("SECURITY_ARGON2_PARALLELISM", "1")
        .envs(env.iter().copied());
    command
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    command(dir, env).args(args).output().expect("binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn invalid_settings_exit_with_code_2_and_name_the_key() {
    let dir = tempfile::tempdir().expect("dir");
    for (env, key) in [
        (
            vec![("SECURITY_REGISTERABLE", "maybe")],
            "SECURITY_REGISTERABLE",
        ),
        (vec![("MAIL_BACKEND", "pigeon")], "MAIL_BACKEND"),
        (vec![("DEBUG", "false")], "SECRET_KEY"),
        (
            vec![
                ("DEBUG", "false"),
                ("SECRET_KEY", "a-long-enough-secret-key"),
            ],
            "SECURITY_PASSWORD_SALT",
        ),
        (vec![("RAMPART_BIND", "nowhere")], "RAMPART_BIND"),
        (
            vec![
                ("ADMIN_EMAIL", "a@example.com"),
                ("ADMIN_PASSWORD", "short"),
            ],
            "ADMIN_PASSWORD",
        ),
    ] {
        let args: &[&str] = if key == "RAMPART_BIND" {
            &["serve"]
        } else {
            &["users", "activate", "x@example.com"]
        };
        let output = run(dir.path(), &env, args);
        assert_eq!(output.status.code(), Some(2), "{key}: {}", stderr(&output));
        assert!(stderr(&output).contains(key), "{key}: {}", stderr(&output));
        assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    }
}

#[test]
fn commands_work_on_a_fresh_instance_folder() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = command(dir.path(), &[])
        .args([
            "users",
            "create",
            "bin@example.com",
            "--password",
            "-",
            "--active",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"password from stdin\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("User created successfully."));
    // DEBUG by default: secrets generated once, private, next to the default database.
    let secrets = dir.path().join("instance/secrets.toml");
    assert!(secrets.exists());
    assert!(dir.path().join("instance/rampart.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secrets)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let first = std::fs::read_to_string(&secrets).expect("secrets");

    let output = run(
        dir.path(),
        &[],
        &["roles", "add", "bin@example.com", "Admin"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&secrets).expect("secrets"), first);

    let output = run(
        dir.path(),
        &[],
        &["users", "deactivate", "ghost@example.com"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("User not found."),
        "{}",
        stderr(&output)
    );
}

#[test]
fn serve_prints_its_url_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = command(dir.path(), &[("RAMPART_BIND", "127.0.0.1:0")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}login"))
            .header("Accept", "application/json")
            .send()
            .await
            .expect("GET /login")
            .status()
    });
    assert_eq!(status, reqwest::StatusCode::OK);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exit = child.wait().expect("wait");
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn with_rust_log_format_json_every_log_line_is_a_json_object_and_probes_answer() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = command(
        dir.path(),
        &[("RAMPART_BIND", "127.0.0.1:0"), ("RUST_LOG_FORMAT", "json")],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let (alive, ready) = runtime.block_on(async {
        let http = reqwest::Client::new();
        let alive = http
            .get(format!("{url}healthz"))
            .send()
            .await
            .expect("GET /healthz")
            .status();
        let ready = http
            .get(format!("{url}readyz"))
            .send()
            .await
            .expect("GET /readyz")
            .status();
        (alive, ready)
    });
    assert_eq!(alive, reqwest::StatusCode::OK);
    assert_eq!(ready, reqwest::StatusCode::OK);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0));
    let logs = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log at all");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value["level"].is_string(), "{line}");
    }
    assert!(logs.contains("shutting down"), "{logs}");
}

#[test]
fn outside_debug_serve_refuses_to_start_without_server_name_or_trusted_hosts() {
    let dir = tempfile::tempdir().expect("dir");
    let env = [
        ("DEBUG", "false"),
        ("SECRET_KEY", "a-long-enough-secret-key"),
        ("SECURITY_PASSWORD_SALT", "salt"),
        ("RAMPART_BIND", "127.0.0.1:0"),
    ];
    let output = run(dir.path(), &env, &["serve"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("SERVER_NAME"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("TRUSTED_HOSTS"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn by_default_serve_mails_links_to_its_own_address_whatever_the_host() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = command(
        dir.path(),
        &[
            ("RAMPART_BIND", "127.0.0.1:0"),
            ("ADMIN_EMAIL", "root@example.com"),
            ("ADMIN_PASSWORD", "admin-password-1"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn");
    let (lines, received) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait = std::time::Duration::from_secs(20);
    let first = received.recv_timeout(wait).expect("first line");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}reset"))
            .header("Host", "evil.example.com")
            .json(&serde_json::json!({"email": "root@example.com"}))
            .send()
            .await
            .expect("POST /reset")
            .status()
    });
    assert_eq!(status, reqwest::StatusCode::OK);
    let link = loop {
        let line = received.recv_timeout(wait).expect("the mailed reset link");
        if let Some(link) = rampart::find_link(&line, "/reset/") {
            break link;
        }
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(link.starts_with(&format!("{url}reset/")), "{link} vs {url}");
    assert!(!link.contains("evil"), "{link}");
}

#[test]
fn the_console_logs_at_info_without_colours_when_not_a_terminal() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = command(dir.path(), &[("RAMPART_BIND", "127.0.0.1:0")])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let first = BufReader::new(stdout)
        .lines()
        .next()
        .expect("a first line")
        .expect("utf-8");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    runtime.block_on(async {
        for path in ["", "login", "no/such/page"] {
            reqwest::get(format!("{url}{path}")).await.expect("GET");
        }
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().expect("wait");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!log.contains('\u{1b}'), "no colour codes in a pipe: {log}");
    assert!(!log.contains(" DEBUG "), "INFO by default: {log}");
    assert!(log.contains("INFO"), "{log}");
}
