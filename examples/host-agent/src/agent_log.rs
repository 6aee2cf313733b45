//! The agent's own log: what vigilo and the agent report through the `log` facade (a channel
//! failing, a store error, a probe failing …), one line per record, appended to a file in
//! the agent's state folder, which its default configuration watches with a `[[log]]`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use vigilo::clock::{Clock, SystemClock};

/// Appends records at `info` and above: `<time> <LEVEL> <target>: <message>`.
struct FileLog {
    file: Mutex<File>,
}

impl log::Log for FileLog {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        meta.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // One record, one line: line breaks in a message are shown as `\n`.
        let message = record.args().to_string().replace('\n', "\\n");
        let line = format!(
            "{} {} {}: {message}\n",
            SystemClock.now(),
            record.level(),
            record.target()
        );
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        if let Ok(mut f) = self.file.lock() {
            let _ = f.flush();
        }
    }
}

/// Sends the `log` facade's records to `path` (created, or appended to) from now on.
pub fn install(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    // Lives as long as the process, as a logger must.
    let logger: &'static FileLog = Box::leak(Box::new(FileLog {
        file: Mutex::new(file),
    }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    Ok(())
}
