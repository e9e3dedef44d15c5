//! `cargo run --release -p rampart-bench [-- --quick | --million | --postgres URL --instances N]`: see [`rampart_bench`].

use std::process::ExitCode;

use clap::Parser as _;
use rampart_bench::Options;

fn main() -> ExitCode {
    let options = Options::parse();
    if options.serve_bare {
        return match rampart_bench::server::serve_bare() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("bare handler: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(dir) = &options.serve_app {
        return match rampart_bench::server::serve_app(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("app: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(database) = &options.serve_peer {
        return match rampart_bench::peer::serve(database) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("peer: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if options.postgres.is_some() {
        let report = match rampart_bench::run_cluster(&options) {
            Ok(report) => report,
            Err(error) => {
                eprintln!("benchmark failed: {error}");
                return ExitCode::FAILURE;
            }
        };
        println!("{}", report.markdown());
        if let Some(path) = rampart_bench::output_path(&options) {
            if let Err(error) = report.write_markdown(&path) {
                eprintln!("cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
            eprintln!("results written to {}", path.display());
        }
        return ExitCode::SUCCESS;
    }
    let report = match rampart_bench::run(&options) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", report.table());
    if let Some(path) = rampart_bench::output_path(&options) {
        match report.write_markdown(&path) {
            Ok(()) => eprintln!("results written to {}", path.display()),
            Err(error) => {
                eprintln!("cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
