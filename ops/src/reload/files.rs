//! The file trigger of reloads: kernel notification (inotify) on the watched files'
//! directories, a settle window, one look at the files, a reload when their content changed.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// What identifies a file's content: modification time, length and a hash of the bytes.
/// `None` when the file cannot be read.
pub type Fingerprint = Option<(Option<SystemTime>, u64, u64)>;

/// The fingerprints of `files`, in order.
pub fn fingerprints(files: &[PathBuf]) -> Vec<Fingerprint> {
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok()?;
            let bytes = std::fs::read(f).ok()?;
            let mut h = DefaultHasher::new();
            bytes.hash(&mut h);
            Some((meta.modified().ok(), meta.len(), h.finish()))
        })
        .collect()
}

/// How [`watch_files`] waits for changes.
#[derive(Clone, Copy, Debug)]
pub struct WatchTiming {
    /// After a change is noticed, wait this long before reading the files, so files written
    /// one after the other (a certificate, then its key) are read and reloaded together.
    pub settle: Duration,
    /// Only when the kernel's file notification cannot be set up (no inotify instance or watch
    /// left, a directory that cannot be watched): time between two looks at the files.
    pub fallback_poll: Duration,
    /// How often the list of files is asked again (`files()`, no file system call): a reload
    /// may name other files (a new certificate), which are then watched too.
    pub list_check: Duration,
}

impl Default for WatchTiming {
    fn default() -> Self {
        WatchTiming {
            settle: Duration::from_millis(300),
            fallback_poll: Duration::from_secs(5),
            list_check: Duration::from_secs(5),
        }
    }
}

/// How a [`FileWatch`] learns of changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WatchMode {
    /// Not started yet.
    #[default]
    Starting,
    /// Kernel notification (inotify) on the files' directories: nothing runs while nothing
    /// changes.
    Notified,
    /// The fallback: the files are read every [`WatchTiming::fallback_poll`].
    Polling,
}

/// What a [`FileWatch`] has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchCounts {
    pub mode: WatchMode,
    /// Changes noticed (a kernel notification about a watched name, or a poll that saw other
    /// content); each is followed by one settle window and one look.
    pub notices: u64,
    /// Times the files were read (fingerprinted): at start and once per notice (or per poll).
    pub looks: u64,
    /// Reloads run (successful or not).
    pub reloads: u64,
}

/// A file watch with counters others can follow (tests, metrics). [`watch_files`] is the
/// same without them.
#[derive(Debug)]
pub struct FileWatch {
    counts: watch::Sender<WatchCounts>,
}

impl Default for FileWatch {
    fn default() -> Self {
        FileWatch {
            counts: watch::channel(WatchCounts::default()).0,
        }
    }
}

/// Watches the files `files()` names and calls `reload` on the blocking pool when their content
/// changes; `reload` returns whether it succeeded. A failed reload is not retried until the files
/// change again. `files` is asked again after each change and every [`WatchTiming::list_check`]
/// (it must not block: it is called on the runtime), since a reload may change the list.
///
/// The kernel notifies (inotify, through the `notify` crate) about every file's **directory**,
/// not the file, and every link of a symbolic-link chain is followed to its own directory: so a
/// file replaced by rename (editors, `mv` into place), or a Kubernetes ConfigMap/Secret volume
/// updated by swapping its `..data` symbolic link, is seen as well as a write in place. Only the
/// watched names count (other files in those directories are ignored), and reading the files
/// notifies nothing (no access events are asked for), so an idle process makes no file system
/// call. After a change, [`WatchTiming::settle`] passes, then the files are read once; the
/// reload runs only if their content differs from the last successful one. If the notification
/// cannot be set up, this says so (`tracing` warning) and reads the files every
/// [`WatchTiming::fallback_poll`], trying the notification again after each change.
///
/// The files are fingerprinted and the directories watched when this is called (not when the
/// future is first polled), so a change made between the call and the spawn is seen.
pub fn watch_files<L, F>(
    files: L,
    timing: WatchTiming,
    reload: F,
) -> impl std::future::Future<Output = ()> + Send
where
    L: Fn() -> Vec<PathBuf> + Send + Sync + 'static,
    F: Fn() -> bool + Send + Sync + 'static,
{
    FileWatch::default().run(files, timing, reload)
}

/// One look at the files: the list, the content fingerprints, and the names to watch.
#[derive(Clone, Debug, Default, PartialEq)]
struct Look {
    files: Vec<PathBuf>,
    prints: Vec<Fingerprint>,
    names: WatchedNames,
}

impl Look {
    fn take(files: &(dyn Fn() -> Vec<PathBuf> + Send + Sync)) -> Look {
        let files = files();
        Look {
            prints: fingerprints(&files),
            names: WatchedNames::of(&files),
            files,
        }
    }

    /// Whether the content (not just the names) is the same.
    fn same_content(&self, other: &Look) -> bool {
        self.files == other.files && self.prints == other.prints
    }
}

/// The directory entries whose change may change a watched file's content: each file's own
/// name in its directory, and for a symbolic link, the first component of a relative target
/// (Kubernetes' `..data`) or the absolute target's own entry, link after link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct WatchedNames(BTreeSet<(PathBuf, OsString)>);

/// Links followed per file at most (a loop ends here).
const MAX_LINKS: usize = 8;

impl WatchedNames {
    fn of(files: &[PathBuf]) -> Self {
        let mut names = BTreeSet::new();
        for file in files {
            let mut path = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            for _ in 0..MAX_LINKS {
                let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                    break;
                };
                let dir = dir.to_path_buf();
                names.insert((dir.clone(), name.to_os_string()));
                let Ok(target) = std::fs::read_link(&path) else {
                    break;
                };
                if let Some(Component::Normal(first)) = target.components().next() {
                    if target.is_relative() {
                        names.insert((dir.clone(), first.to_os_string()));
                    }
                }
                path = dir.join(target);
            }
        }
        WatchedNames(names)
    }

    fn dirs(&self) -> BTreeSet<&Path> {
        self.0.iter().map(|(d, _)| d.as_path()).collect()
    }

    /// Whether a notification about `path` concerns a watched name (or a watched directory
    /// itself: removed or moved).
    fn concerns(&self, path: &Path) -> bool {
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            if self.0.contains(&(dir.to_path_buf(), name.to_os_string())) {
                return true;
            }
        }
        self.0.iter().any(|(d, _)| d == path)
    }

    fn concerns_event(&self, event: &notify::Result<notify::Event>) -> bool {
        match event {
            // A lost or overflowed queue: anything may have changed.
            Err(_) => true,
            Ok(e) => e.need_rescan() || e.paths.iter().any(|p| self.concerns(p)),
        }
    }
}

/// The kernel notification: a watcher on the directories, its events in a channel.
struct Notified {
    watcher: notify::RecommendedWatcher,
    events: tokio::sync::mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    dirs: Vec<PathBuf>,
}

impl Notified {
    fn start(names: &WatchedNames) -> notify::Result<Notified> {
        use notify::{Config, EventKindMask, Watcher};
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        // No access events: reading the files must not notify (nor wake) anything.
        let config = Config::default().with_event_kinds(
            EventKindMask::CREATE
                | EventKindMask::REMOVE
                | EventKindMask::ALL_MODIFY
                | EventKindMask::ACCESS_CLOSE,
        );
        let watcher = notify::RecommendedWatcher::new(
            move |e: notify::Result<notify::Event>| {
                let _ = tx.send(e);
            },
            config,
        )?;
        let mut n = Notified {
            watcher,
            events,
            dirs: Vec::new(),
        };
        n.arm(names)?;
        Ok(n)
    }

    /// Watches exactly the directories of `names` again: a directory may be a new one under
    /// the same path (a swapped `..data`), so every watch is renewed after a change.
    fn arm(&mut self, names: &WatchedNames) -> notify::Result<()> {
        use notify::{RecursiveMode, Watcher};
        for dir in self.dirs.drain(..) {
            let _ = self.watcher.unwatch(&dir);
        }
        for dir in names.dirs() {
            self.watcher.watch(dir, RecursiveMode::NonRecursive)?;
            self.dirs.push(dir.to_path_buf());
        }
        Ok(())
    }

    /// Waits for a notification about one of `names`; `None` if the watcher stopped.
    async fn changed(&mut self, names: &WatchedNames) -> Option<()> {
        loop {
            let event = self.events.recv().await?;
            if names.concerns_event(&event) {
                return Some(());
            }
        }
    }

    /// Forgets the notifications already queued (the look that follows sees their effect).
    fn drain(&mut self) {
        while self.events.try_recv().is_ok() {}
    }
}

impl FileWatch {
    /// The counters, as they change.
    pub fn counts(&self) -> watch::Receiver<WatchCounts> {
        self.counts.subscribe()
    }

    /// [`watch_files`], counting into this watch.
    pub fn run(
        self,
        files: impl Fn() -> Vec<PathBuf> + Send + Sync + 'static,
        timing: WatchTiming,
        reload: impl Fn() -> bool + Send + Sync + 'static,
    ) -> impl std::future::Future<Output = ()> + Send {
        let files: Arc<dyn Fn() -> Vec<PathBuf> + Send + Sync> = Arc::new(files);
        let reload = Arc::new(reload);
        let first = Look::take(&*files);
        let mut notified = self.start_notified(&first.names, timing);
        let counts = self.counts;
        counts.send_modify(|c| c.looks += 1);
        async move {
            let look = || {
                let files = files.clone();
                let counts = counts.clone();
                async move {
                    let look = tokio::task::spawn_blocking(move || Look::take(&*files))
                        .await
                        .unwrap_or_default();
                    counts.send_modify(|c| c.looks += 1);
                    look
                }
            };
            let mut last = first;
            let mut failed: Option<Look> = None;
            loop {
                match notified.as_mut() {
                    Some(n) => {
                        let changed = tokio::select! {
                            c = n.changed(&last.names) => c,
                            _ = tokio::time::sleep(timing.list_check) => {
                                // Memory only: the list a reload may have changed.
                                if files() == last.files {
                                    continue;
                                }
                                Some(())
                            }
                        };
                        if changed.is_none() {
                            tracing::warn!(
                                "file watch: the kernel notification stopped; reading the files every {:?}",
                                timing.fallback_poll
                            );
                            notified = None;
                            counts.send_modify(|c| c.mode = WatchMode::Polling);
                            continue;
                        }
                    }
                    None => {
                        tokio::time::sleep(timing.fallback_poll).await;
                        let now = look().await;
                        if now.same_content(&last)
                            || failed.as_ref().is_some_and(|f| f.same_content(&now))
                        {
                            continue;
                        }
                    }
                }
                counts.send_modify(|c| c.notices += 1);
                tokio::time::sleep(timing.settle).await;
                if let Some(n) = notified.as_mut() {
                    n.drain();
                }
                // A name may now lead to another directory (a new `..data`): watch again,
                // before the files are read, so that a change landing after the read is
                // queued for the next turn instead of falling between the read and the watch.
                let names = {
                    let files = files.clone();
                    tokio::task::spawn_blocking(move || WatchedNames::of(&files()))
                        .await
                        .unwrap_or_default()
                };
                notified = match notified.take() {
                    Some(mut n) => match n.arm(&names) {
                        Ok(()) => Some(n),
                        Err(e) => {
                            tracing::warn!(
                                "file watch: cannot watch the files' directories again ({e}); reading the files every {:?}",
                                timing.fallback_poll
                            );
                            counts.send_modify(|c| c.mode = WatchMode::Polling);
                            None
                        }
                    },
                    None => {
                        let n = Self::start_with(&counts, &names, timing);
                        if n.is_some() {
                            tracing::info!("file watch: kernel notification set up again");
                        }
                        n
                    }
                };
                let now = look().await;
                if now.same_content(&last) || failed.as_ref().is_some_and(|f| f.same_content(&now))
                {
                    last.names = now.names;
                    continue;
                }
                let r = reload.clone();
                counts.send_modify(|c| c.reloads += 1);
                let ok = tokio::task::spawn_blocking(move || r())
                    .await
                    .unwrap_or(false);
                if ok {
                    last = now;
                    failed = None;
                } else {
                    last.names = now.names.clone();
                    failed = Some(now);
                }
            }
        }
    }

    fn start_notified(&self, names: &WatchedNames, timing: WatchTiming) -> Option<Notified> {
        let n = Self::start_with(&self.counts, names, timing);
        if n.is_none() {
            tracing::warn!(
                "file watch: no kernel notification; reading the files every {:?}",
                timing.fallback_poll
            );
        }
        n
    }

    fn start_with(
        counts: &watch::Sender<WatchCounts>,
        names: &WatchedNames,
        timing: WatchTiming,
    ) -> Option<Notified> {
        match Notified::start(names) {
            Ok(n) => {
                counts.send_modify(|c| c.mode = WatchMode::Notified);
                Some(n)
            }
            Err(e) => {
                tracing::debug!(
                    "file watch: cannot watch {:?} ({e}); fallback poll every {:?}",
                    names.dirs(),
                    timing.fallback_poll
                );
                counts.send_modify(|c| c.mode = WatchMode::Polling);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::sync::mpsc;

    /// Longest wait for something that must happen.
    const DEADLINE: Duration = Duration::from_secs(10);
    /// How long "nothing happens" is watched for.
    const QUIET: Duration = Duration::from_millis(1500);

    /// A running watch over `files`: each reload reads every file and reports the contents.
    struct Running {
        counts: watch::Receiver<WatchCounts>,
        reloads: mpsc::UnboundedReceiver<Vec<String>>,
        succeed: Arc<AtomicBool>,
        /// What `files()` answers (a test may add to it, as a reload would).
        list: Arc<std::sync::Mutex<Vec<PathBuf>>>,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(files: Vec<PathBuf>, timing: WatchTiming) -> Running {
        let (tx, reloads) = mpsc::unbounded_channel();
        let succeed = Arc::new(AtomicBool::new(true));
        let list = Arc::new(std::sync::Mutex::new(files));
        let (ok, listed, read) = (succeed.clone(), list.clone(), list.clone());
        let watch = FileWatch::default();
        let counts = watch.counts();
        let task = tokio::spawn(watch.run(
            move || listed.lock().unwrap().clone(),
            timing,
            move || {
                let files = read.lock().unwrap().clone();
                let seen = files
                    .iter()
                    .map(|f| std::fs::read_to_string(f).unwrap_or_default())
                    .collect();
                let _ = tx.send(seen);
                ok.load(Ordering::SeqCst)
            },
        ));
        Running {
            counts,
            reloads,
            succeed,
            list,
            task,
        }
    }

    /// A folder with `files` (name, content) written, watched with `settle_ms`, the kernel
    /// notification set up: (folder, paths, the watch).
    async fn watching(
        files: &[(&str, &str)],
        settle_ms: u64,
    ) -> (tempfile::TempDir, Vec<PathBuf>, Running) {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = files.iter().map(|(n, _)| dir.path().join(n)).collect();
        for (path, (_, text)) in paths.iter().zip(files) {
            write(path, text);
        }
        let mut w = start(paths.clone(), timing(settle_ms));
        w.until("kernel notification set up", |c| {
            c.mode == WatchMode::Notified
        })
        .await;
        (dir, paths, w)
    }

    fn timing(settle_ms: u64) -> WatchTiming {
        WatchTiming {
            settle: Duration::from_millis(settle_ms),
            fallback_poll: Duration::from_millis(100),
            list_check: Duration::from_millis(200),
        }
    }

    impl Running {
        async fn next_reload(&mut self) -> Vec<String> {
            tokio::time::timeout(DEADLINE, self.reloads.recv())
                .await
                .expect("a reload within the deadline")
                .expect("the watch is running")
        }

        /// Waits until the counters satisfy `f`.
        async fn until(&mut self, what: &str, f: impl FnMut(&WatchCounts) -> bool) {
            let done = tokio::time::timeout(DEADLINE, self.counts.wait_for(f))
                .await
                .map(|r| r.is_ok());
            assert_eq!(
                done,
                Ok(true),
                "{what}: not within {DEADLINE:?}: {:?}",
                *self.counts.borrow()
            );
        }

        /// Asserts that for [`QUIET`] the watch neither reads the files nor reloads.
        async fn assert_idle(&mut self, what: &str) {
            let before = *self.counts.borrow_and_update();
            let changed = tokio::time::timeout(QUIET, self.counts.changed()).await;
            assert!(
                changed.is_err(),
                "{what}: the watch did something while the files stayed the same: {before:?} → {:?}",
                *self.counts.borrow()
            );
            assert!(self.reloads.try_recv().is_err(), "{what}: no reload");
        }

        /// [`Running::assert_idle`], then the counts are (notices, looks, reloads).
        async fn assert_idle_at(&mut self, what: &str, want: (u64, u64, u64)) {
            self.assert_idle(what).await;
            let c = *self.counts.borrow();
            assert_eq!((c.notices, c.looks, c.reloads), want, "{what}: {c:?}");
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    /// Replaces `path` whole (write a temporary, rename it over): no reader sees half of it.
    fn replace(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        write(&tmp, text);
        std::fs::rename(&tmp, path).unwrap();
    }

    #[tokio::test]
    async fn an_idle_watch_reads_nothing_and_ignores_other_files() {
        let (dir, _, mut w) = watching(&[("cert.pem", "cert 1"), ("key.pem", "key 1")], 50).await;
        assert_eq!(w.counts.borrow().looks, 1, "read once at start");
        // Another file of the same directory changes: not ours.
        write(&dir.path().join("unrelated.txt"), "x");
        std::fs::rename(
            dir.path().join("unrelated.txt"),
            dir.path().join("other.txt"),
        )
        .unwrap();
        w.assert_idle_at("idle with other files changing", (0, 1, 0))
            .await;
        w.task.abort();
    }

    #[tokio::test]
    async fn a_rename_into_place_reloads_once_and_the_reload_reads_notify_nothing() {
        let (dir, paths, mut w) = watching(&[("policy.toml", "version = 1")], 50).await;
        let policy = &paths[0];
        // The way editors and `install` replace a file: write a temporary, rename it over.
        let tmp = dir.path().join(".policy.toml.swp");
        write(&tmp, "version = 2");
        std::fs::rename(&tmp, policy).unwrap();
        assert_eq!(w.next_reload().await, ["version = 2"]);
        // Reading the files for the look and the reload must not notify the watch itself.
        w.assert_idle_at("after the reload", (1, 2, 1)).await;
        w.task.abort();
    }

    #[tokio::test]
    async fn a_kubernetes_data_symlink_swap_reloads_once_with_both_files() {
        // The layout of a ConfigMap/Secret volume: the names are links through `..data`, a link
        // to a timestamped directory; an update writes a new directory and renames a new
        // `..data` link over the old one, then removes the old directory.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let version = |n: u32| {
            let v = d.join(format!("..2026_12_06_0{n}"));
            std::fs::create_dir(&v).unwrap();
            write(&v.join("cert.pem"), &format!("cert {n}"));
            write(&v.join("key.pem"), &format!("key {n}"));
            v
        };
        let first = version(1);
        std::os::unix::fs::symlink(first.file_name().unwrap(), d.join("..data")).unwrap();
        for f in ["cert.pem", "key.pem"] {
            std::os::unix::fs::symlink(Path::new("..data").join(f), d.join(f)).unwrap();
        }
        let files = vec![d.join("cert.pem"), d.join("key.pem")];
        let mut w = start(files, timing(100));
        w.until("set up", |c| c.mode == WatchMode::Notified).await;
        let second = version(2);
        std::os::unix::fs::symlink(second.file_name().unwrap(), d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        // The rename alone is the change (the old directory is still there).
        assert_eq!(w.next_reload().await, ["cert 2", "key 2"]);
        std::fs::remove_dir_all(&first).unwrap();
        w.assert_idle("after the swap and the old directory's removal")
            .await;
        assert_eq!(w.counts.borrow().reloads, 1);
        // The watch follows the new `..data`: a second swap is seen as well.
        let third = version(3);
        std::os::unix::fs::symlink(third.file_name().unwrap(), d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        std::fs::remove_dir_all(&second).unwrap();
        assert_eq!(w.next_reload().await, ["cert 3", "key 3"]);
        w.task.abort();
    }

    #[tokio::test]
    async fn a_cert_then_its_key_within_the_settle_window_is_one_reload() {
        let (_dir, paths, mut w) =
            watching(&[("cert.pem", "cert 1"), ("key.pem", "key 1")], 1000).await;
        let (cert, key) = (&paths[0], &paths[1]);
        write(cert, "cert 2");
        // The key is written after the watch has noticed the certificate, inside its window.
        w.until("the certificate noticed", |c| c.notices == 1).await;
        write(key, "key 2");
        assert_eq!(w.next_reload().await, ["cert 2", "key 2"], "read together");
        // One notice, one look after the window, one reload for both files.
        w.assert_idle_at("after the reload", (1, 2, 1)).await;
        w.task.abort();
    }

    #[tokio::test]
    async fn a_failed_reload_is_not_retried_until_the_files_change() {
        let (_dir, paths, mut w) = watching(&[("cert.pem", "one")], 20).await;
        let path = &paths[0];
        w.succeed.store(false, Ordering::SeqCst);
        // Same length, same second: only the content hash differs. (Whole replacements: a
        // notification left from one write could otherwise start a look between the
        // truncation and the write of the next.)
        replace(path, "two");
        assert_eq!(w.next_reload().await, ["two"]);
        // Not retried while the files stay as they are.
        w.assert_idle("after the failed reload").await;
        w.succeed.store(true, Ordering::SeqCst);
        replace(path, "three");
        assert_eq!(w.next_reload().await, ["three"]);
        assert_eq!(
            w.counts.borrow().reloads,
            2,
            "one call per change of content"
        );
        w.task.abort();
    }

    #[tokio::test]
    async fn without_a_watchable_directory_it_polls_slowly_then_watches_again() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("later");
        let file = sub.join("policy.toml");
        let mut w = start(vec![file.clone()], timing(20));
        w.until("fallback", |c| c.mode == WatchMode::Polling).await;
        std::fs::create_dir(&sub).unwrap();
        write(&file, "version = 1");
        assert_eq!(w.next_reload().await, ["version = 1"]);
        w.until("notification set up again", |c| {
            c.mode == WatchMode::Notified
        })
        .await;
        let tmp = sub.join("policy.toml.new");
        write(&tmp, "version = 2");
        std::fs::rename(&tmp, &file).unwrap();
        assert_eq!(w.next_reload().await, ["version = 2"]);
        w.task.abort();
    }

    #[tokio::test]
    async fn a_file_a_reload_adds_to_the_list_is_watched_too() {
        let (_dir, _, mut w) = watching(&[("a.pem", "a 1")], 20).await;
        let other = tempfile::tempdir().unwrap();
        let b = other.path().join("b.pem");
        write(&b, "b 1");
        // As a config reload naming a new certificate in another folder would.
        w.list.lock().unwrap().push(b.clone());
        assert_eq!(
            w.next_reload().await,
            ["a 1", "b 1"],
            "the new list is read"
        );
        replace(&b, "b 2");
        assert_eq!(
            w.next_reload().await,
            ["a 1", "b 2"],
            "and its folder watched"
        );
        w.assert_idle("after").await;
        w.task.abort();
    }
}
