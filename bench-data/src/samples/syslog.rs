//! Generated syslog lines: RFC 3164 (`/var/log/auth.log` and `/var/log/messages` shapes) and
//! RFC 5424 (rsyslog forwarding shape, with structured data).
//!
//! ```text
//! Jan  1 00:00:00 web-03 sshd[4211]: Accepted publickey for deploy from 10.1.4.7 port 51514 ssh2
//! <86>Jan  1 00:00:01 db-01 sudo: alice : TTY=pts/1 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl status nginx
//! <38>1 2026-01-01T00:00:00.123Z web-03 sshd 4211 - [meta@32473 seq="1" region="eu-west-1"] Connection closed by 10.1.4.7 port 51514 [preauth]
//! ```
//!
//! Timestamps start at [`crate::DEFAULT_START_TS_MS`] and grow by exponential gaps; hosts,
//! users and source addresses are Zipf-skewed, so the output compresses like real logs.

use chrono::{DateTime, Datelike, Timelike};

use crate::rng::{Rng, Weighted};
use crate::text::{push_padded, push_u64, Rfc3339Cache};

const HOSTS: &[&str] = &[
    "web-01", "web-02", "web-03", "db-01", "db-02", "cache-01", "lb-01", "mail-01", "build-07",
    "bastion",
];

const USERS: &[&str] = &[
    "root", "deploy", "alice", "bob", "ubuntu", "admin", "git", "postgres", "jenkins", "carol",
];

/// Names tried by scanners in `Invalid user` lines.
const SCAN_USERS: &[&str] = &[
    "admin",
    "test",
    "oracle",
    "guest",
    "user",
    "pi",
    "support",
    "ftpuser",
    "webmaster",
    "nagios",
];

const COMMANDS: &[&str] = &[
    "/usr/bin/systemctl status nginx",
    "/usr/bin/apt-get update",
    "/bin/journalctl -u sshd --since today",
    "/usr/bin/docker ps -a",
    "/bin/cat /var/log/syslog",
];

const CRON_JOBS: &[&str] = &[
    "command -v debian-sa1 > /dev/null && debian-sa1 1 1",
    "cd / && run-parts --report /etc/cron.hourly",
    "/usr/local/bin/backup.sh --incremental",
    "[ -x /usr/lib/php/sessionclean ] && /usr/lib/php/sessionclean",
];

const KERNEL: &[&str] = &[
    "EXT4-fs (sda1): re-mounted. Opts: errors=remount-ro",
    "TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.",
    "nf_conntrack: nf_conntrack: table full, dropping packet",
    "usb 1-1: new high-speed USB device number 2 using ehci-pci",
    "Out of memory: Killed process 2231 (java) total-vm:8123456kB",
];

/// What a line is about; each program has its own message shapes and pid behaviour.
#[derive(Clone, Copy)]
enum Program {
    Sshd,
    Cron,
    Sudo,
    Kernel,
    Systemd,
    Postfix,
}

/// Program weights: sshd dominates an auth log under the usual background scanning.
const PROGRAMS: &[(Program, f64)] = &[
    (Program::Sshd, 50.0),
    (Program::Cron, 15.0),
    (Program::Sudo, 8.0),
    (Program::Kernel, 10.0),
    (Program::Systemd, 12.0),
    (Program::Postfix, 5.0),
];

/// Shared state of both generators: clock, skewed pools, reusable buffers.
struct Gen {
    rng: Rng,
    now_ms: i64,
    hosts: Weighted,
    users: Weighted,
    programs: Weighted,
    iso: Rfc3339Cache,
}

impl Gen {
    fn new(seed: u64) -> Self {
        Gen {
            rng: Rng::new(seed),
            now_ms: crate::DEFAULT_START_TS_MS,
            hosts: Weighted::zipf(HOSTS.len()),
            users: Weighted::zipf(USERS.len()),
            programs: Weighted::from_weights(PROGRAMS.iter().map(|p| p.1)),
            iso: Rfc3339Cache::new(),
        }
    }

    /// Advances the clock by an exponential gap (mean 40 ms) and returns it.
    fn tick(&mut self) -> i64 {
        self.now_ms += self.rng.exp(40.0) as i64;
        self.now_ms
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.below(items.len() as u32) as usize]
    }

    fn host(&mut self) -> &'static str {
        HOSTS[self.hosts.sample(&mut self.rng)]
    }

    fn user(&mut self) -> &'static str {
        USERS[self.users.sample(&mut self.rng)]
    }

    fn program(&mut self) -> Program {
        PROGRAMS[self.programs.sample(&mut self.rng)].0
    }

    /// An IPv4 address: mostly a few internal ones, sometimes a scanner's.
    fn ip(&mut self, out: &mut Vec<u8>) {
        let (a, b) = if self.rng.chance(0.7) {
            (10, self.rng.below(4) + 1)
        } else {
            (self.rng.between(23, 223) as u32, self.rng.below(256))
        };
        for (i, v) in [a, b, self.rng.below(256), self.rng.below(254) + 1]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                out.push(b'.');
            }
            push_u64(out, u64::from(v));
        }
    }

    /// The app name, its pid (if it writes one) and the message of a line.
    fn event(&mut self, msg: &mut Vec<u8>) -> (&'static str, Option<u64>, Program) {
        msg.clear();
        let program = self.program();
        let pid = Some(self.rng.between(300, 65_000));
        let (app, pid) = match program {
            Program::Sshd => {
                let port = self.rng.between(1024, 65_535);
                match self.rng.below(5) {
                    0 => {
                        msg.extend_from_slice(b"Accepted publickey for ");
                        let u = self.user();
                        msg.extend_from_slice(u.as_bytes());
                        msg.extend_from_slice(b" from ");
                    }
                    1 | 2 => {
                        msg.extend_from_slice(b"Failed password for invalid user ");
                        let u = self.pick(SCAN_USERS);
                        msg.extend_from_slice(u.as_bytes());
                        msg.extend_from_slice(b" from ");
                    }
                    3 => msg.extend_from_slice(b"Connection closed by "),
                    _ => {
                        msg.extend_from_slice(b"pam_unix(sshd:session): session opened for user ");
                        let u = self.user();
                        msg.extend_from_slice(u.as_bytes());
                        msg.extend_from_slice(b" by (uid=0)");
                        return ("sshd", pid, program);
                    }
                }
                self.ip(msg);
                msg.extend_from_slice(b" port ");
                push_u64(msg, port);
                msg.extend_from_slice(if self.rng.chance(0.5) {
                    b" ssh2".as_slice()
                } else {
                    b" [preauth]".as_slice()
                });
                ("sshd", pid)
            }
            Program::Cron => {
                msg.extend_from_slice(b"(root) CMD (");
                let job = self.pick(CRON_JOBS);
                msg.extend_from_slice(job.as_bytes());
                msg.push(b')');
                ("CRON", pid)
            }
            Program::Sudo => {
                let u = self.user();
                msg.extend_from_slice(u.as_bytes());
                msg.extend_from_slice(b" : TTY=pts/");
                push_u64(msg, u64::from(self.rng.below(4)));
                msg.extend_from_slice(b" ; PWD=/home/");
                msg.extend_from_slice(u.as_bytes());
                msg.extend_from_slice(b" ; USER=root ; COMMAND=");
                let c = self.pick(COMMANDS);
                msg.extend_from_slice(c.as_bytes());
                ("sudo", None)
            }
            Program::Kernel => {
                msg.push(b'[');
                let up = (self.now_ms - crate::DEFAULT_START_TS_MS) as u64 + 86_400_000;
                push_u64(msg, up / 1000);
                msg.push(b'.');
                push_padded(msg, (up % 1000) * 1000 + u64::from(self.rng.below(1000)), 6);
                msg.extend_from_slice(b"] ");
                let k = self.pick(KERNEL);
                msg.extend_from_slice(k.as_bytes());
                ("kernel", None)
            }
            Program::Systemd => {
                msg.extend_from_slice(b"Started Session ");
                push_u64(msg, self.rng.between(1, 5000));
                msg.extend_from_slice(b" of user ");
                let u = self.user();
                msg.extend_from_slice(u.as_bytes());
                msg.push(b'.');
                ("systemd", Some(1))
            }
            Program::Postfix => {
                msg.extend_from_slice(b"connect from unknown[");
                self.ip(msg);
                msg.push(b']');
                ("postfix/smtpd", pid)
            }
        };
        (app, pid, program)
    }
}

/// Facility and severity of a program's lines, as a PRI.
fn pri(program: Program) -> u64 {
    let (facility, severity) = match program {
        Program::Sshd | Program::Sudo => (10, 6), // authpriv.info
        Program::Cron => (9, 6),
        Program::Kernel => (0, 4),
        Program::Systemd => (3, 6),
        Program::Postfix => (2, 6),
    };
    facility * 8 + severity
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Appends the BSD timestamp `Mmm dd HH:MM:SS` (day space-padded) of `ts_ms`.
fn push_bsd(out: &mut Vec<u8>, ts_ms: i64) {
    let Some(t) = DateTime::from_timestamp(ts_ms.div_euclid(1000), 0) else {
        return;
    };
    out.extend_from_slice(MONTHS[t.month0() as usize]);
    out.push(b' ');
    if t.day() < 10 {
        out.push(b' ');
    }
    push_u64(out, u64::from(t.day()));
    out.push(b' ');
    push_padded(out, u64::from(t.hour()), 2);
    out.push(b':');
    push_padded(out, u64::from(t.minute()), 2);
    out.push(b':');
    push_padded(out, u64::from(t.second()), 2);
}

/// `lines` RFC 3164 lines from `seed`: the auth.log / messages shape (no PRI), with a PRI on
/// about a third of them (as a relay writes them).
pub fn syslog_3164(seed: u64, lines: usize) -> Vec<u8> {
    let mut g = Gen::new(seed);
    let mut out = Vec::with_capacity(lines * 110);
    let mut msg = Vec::with_capacity(160);
    for _ in 0..lines {
        let ts = g.tick();
        let host = g.host();
        let (app, pid, program) = g.event(&mut msg);
        if g.rng.chance(0.3) {
            out.push(b'<');
            push_u64(&mut out, pri(program));
            out.push(b'>');
        }
        push_bsd(&mut out, ts);
        out.push(b' ');
        out.extend_from_slice(host.as_bytes());
        out.push(b' ');
        out.extend_from_slice(app.as_bytes());
        if let Some(pid) = pid {
            out.push(b'[');
            push_u64(&mut out, pid);
            out.push(b']');
        }
        out.extend_from_slice(b": ");
        out.extend_from_slice(&msg);
        out.push(b'\n');
    }
    out
}

/// `lines` RFC 5424 lines from `seed`: millisecond UTC timestamps, `-` for missing fields,
/// structured data on about 40% of the lines (one or two elements, some values with
/// escaped quotes), a MSGID on some.
pub fn syslog_5424(seed: u64, lines: usize) -> Vec<u8> {
    let mut g = Gen::new(seed);
    let mut out = Vec::with_capacity(lines * 150);
    let mut msg = Vec::with_capacity(160);
    for seq in 0..lines {
        let ts = g.tick();
        let host = g.host();
        let (app, pid, program) = g.event(&mut msg);
        out.push(b'<');
        push_u64(&mut out, pri(program));
        out.extend_from_slice(b">1 ");
        // The range of DEFAULT_START_TS_MS plus gaps is far inside 0000..=9999.
        if g.iso.push(&mut out, ts).is_err() {
            out.push(b'-');
        }
        out.push(b' ');
        out.extend_from_slice(host.as_bytes());
        out.push(b' ');
        out.extend_from_slice(app.as_bytes());
        out.push(b' ');
        match pid {
            Some(pid) => push_u64(&mut out, pid),
            None => out.push(b'-'),
        }
        out.push(b' ');
        match program {
            Program::Sshd if g.rng.chance(0.5) => out.extend_from_slice(b"AUTH"),
            Program::Cron => out.extend_from_slice(b"JOB"),
            _ => out.push(b'-'),
        }
        out.push(b' ');
        if g.rng.chance(0.4) {
            out.extend_from_slice(b"[meta@32473 seq=\"");
            push_u64(&mut out, seq as u64 + 1);
            out.extend_from_slice(b"\" region=\"");
            let region = g.pick(&["eu-west-1", "us-east-1", "ap-south-1"]);
            out.extend_from_slice(region.as_bytes());
            out.extend_from_slice(b"\"]");
            if g.rng.chance(0.3) {
                out.extend_from_slice(b"[origin ip=\"");
                g.ip(&mut out);
                out.extend_from_slice(b"\" software=\"rsyslogd\" note=\"say \\\"hi\\\" \\]\"]");
            }
        } else {
            out.push(b'-');
        }
        if !msg.is_empty() {
            out.push(b' ');
            out.extend_from_slice(&msg);
        }
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_newline_terminated() {
        for f in [syslog_3164, syslog_5424] {
            let a = f(7, 500);
            assert_eq!(a, f(7, 500));
            assert_ne!(a, f(8, 500));
            assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 500);
            assert!(a.ends_with(b"\n"));
            assert!(std::str::from_utf8(&a).is_ok());
        }
        assert!(syslog_3164(1, 0).is_empty());
    }
}
