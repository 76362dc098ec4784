//! The calls `lamina snapshotter` logs, read back by the kill test (`kills.rs`): a call is logged
//! as it arrives (info, before the engine takes it: containerd's calls wait for the engine one at a
//! time) and when the engine is done with it (debug, with its time), so a call in flight at a kill
//! is one that arrived and is not done in the killed snapshotter's log.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The snapshotter's log level: info logs each call as it arrives, debug (of the server's module)
/// when the engine is done with it.
pub const LOG_FILTER: &str = "info,lamina::snapshotter=debug";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rpc {
    Prepare,
    Commit,
    Remove,
}

impl Rpc {
    pub const ALL: [Rpc; 3] = [Rpc::Prepare, Rpc::Commit, Rpc::Remove];

    /// The word the snapshotter logs for it.
    fn word(self) -> &'static str {
        match self {
            Rpc::Prepare => "prepare",
            Rpc::Commit => "commit",
            Rpc::Remove => "remove",
        }
    }

    fn parse(word: &str) -> Option<Rpc> {
        Rpc::ALL.into_iter().find(|r| r.word() == word)
    }
}

/// A log line about a call: `prepare key=…` when it arrives (logged before the engine takes it),
/// `rpc="prepare" key=… elapsed_ms=N` when the engine is done with it.
#[derive(Debug, PartialEq)]
pub enum Event {
    Arrived(Rpc),
    Done(Rpc, u64),
}

pub fn event(line: &str) -> Option<Event> {
    let (_, rest) = line.split_once("lamina::snapshotter::")?;
    let (_, rest) = rest.split_once(": ")?;
    if let Some(fields) = rest.strip_prefix("rpc=") {
        let rpc = Rpc::parse(fields.split_whitespace().next()?.trim_matches('"'))?;
        // keys hold spaces (containerd's "extract-… sha256:…"): look for the field by name
        let ms = fields
            .split_whitespace()
            .find_map(|f| f.strip_prefix("elapsed_ms="))?
            .parse()
            .ok()?;
        return Some(Event::Done(rpc, ms));
    }
    // an arrival is the bare word and its fields (`commit name=…`, the others `key=…`); a
    // message (an error) may begin with the word too
    let (word, fields) = rest.split_once(' ')?;
    let rpc = Rpc::parse(word)?;
    let first = if rpc == Rpc::Commit { "name=" } else { "key=" };
    fields.starts_with(first).then_some(Event::Arrived(rpc))
}

/// The call that had arrived and was not done when the log ends (the oldest, should there be two).
pub fn in_flight(log: &str) -> Option<Rpc> {
    let mut open = Vec::new();
    for e in log.lines().filter_map(event) {
        match e {
            Event::Arrived(rpc) => open.push(rpc),
            Event::Done(rpc, _) => {
                if let Some(i) = open.iter().position(|o| *o == rpc) {
                    open.remove(i);
                }
            }
        }
    }
    open.first().copied()
}

/// The snapshotter's log from where it ended when watching began, read as it grows.
pub struct Watch {
    file: File,
    partial: Vec<u8>,
    arrived: [usize; 3],
}

impl Watch {
    pub fn from_end(path: &Path) -> Watch {
        let mut file = File::open(path).expect("snapshotter log");
        file.seek(SeekFrom::End(0)).expect("seek log");
        Watch {
            file,
            partial: Vec::new(),
            arrived: [0; 3],
        }
    }

    /// The events logged since the last look.
    pub fn poll(&mut self) -> Vec<Event> {
        self.file
            .read_to_end(&mut self.partial)
            .expect("read snapshotter log");
        let mut events = Vec::new();
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            if let Some(e) = event(&String::from_utf8_lossy(&line)) {
                if let Event::Arrived(r) = e {
                    self.arrived[r as usize] += 1;
                }
                events.push(e);
            }
        }
        events
    }

    /// How many calls of `rpc` arrived since watching began.
    pub fn arrived(&mut self, rpc: Rpc) -> usize {
        self.poll();
        self.arrived[rpc as usize]
    }
}

/// Lines as `lamina snapshotter` writes them (keys with a space, as containerd's extraction keys
/// have), and what is in flight after each prefix of them.
#[test]
fn calls_are_read_from_the_snapshotter_log() {
    let log = [
        " INFO lamina::snapshotter::service: prepare key=ns/5/extract-1-Ab sha256:aa parent=",
        "DEBUG lamina::snapshotter::service: rpc=\"prepare\" key=ns/5/extract-1-Ab sha256:aa \
         elapsed_ms=2",
        " INFO lamina::snapshotter::commit: commit name=ns/6/sha256:aa key=ns/5/extract-1-Ab \
         sha256:aa parent=",
        "DEBUG lamina::snapshotter::service: rpc=\"stat\" key=ns/4/x elapsed_ms=0",
        " WARN lamina::snapshotter::service: commit failed rpc=\"commit\" key=k",
        " INFO lamina::snapshotter::service: remove key=ns/7/c1",
    ];
    assert_eq!(event(log[0]), Some(Event::Arrived(Rpc::Prepare)));
    assert_eq!(event(log[1]), Some(Event::Done(Rpc::Prepare, 2)));
    assert_eq!(event(log[2]), Some(Event::Arrived(Rpc::Commit)));
    assert_eq!(event(log[3]), None, "not one of the three");
    assert_eq!(
        event(log[4]),
        None,
        "a message is neither an arrival nor an end"
    );
    assert_eq!(in_flight(&log[..1].join("\n")), Some(Rpc::Prepare));
    assert_eq!(in_flight(&log[..2].join("\n")), None);
    assert_eq!(in_flight(&log[..5].join("\n")), Some(Rpc::Commit));
    assert_eq!(event(log[5]), Some(Event::Arrived(Rpc::Remove)));
    assert_eq!(in_flight(&log.join("\n")), Some(Rpc::Commit), "the oldest");
}
