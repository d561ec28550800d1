use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    reelbase::cli::run(reelbase::cli::Cli::parse())
}
