//! The argument grammar (DESIGN.md "CLI contract").

use crate::engine::{ArchiveFormat, Driver};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "lamina",
    version,
    about = "A container storage engine: load, store and mount images"
)]
pub struct Cli {
    /// Store root (default /var/lib/lamina for root, $XDG_DATA_HOME/lamina otherwise)
    #[arg(long, global = true, env = "LAMINA_ROOT")]
    pub root: Option<PathBuf>,
    /// Log debug detail to stderr
    #[arg(long, global = true)]
    pub debug: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load images from an OCI layout, an oci-archive or a docker-archive (PATH[:REF])
    Load(LoadArgs),
    /// Make a one-layer image from a root filesystem directory or tar
    Import(ImportArgs),
    /// Mount an image (read-only view or writable container layer)
    Mount(MountArgs),
    /// Unmount a mount and discard its writable layer
    #[command(alias = "unmount")]
    Umount(UmountArgs),
    /// List mounts
    Mounts(MountsArgs),
    /// Show the store and what the kernel supports
    Info,
    /// Show the changes in a writable mount (A added, C changed, D deleted)
    Diff(DiffArgs),
    /// Turn a writable mount's changes into a new image
    Commit(CommitArgs),
    /// List images
    Images(ImagesArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Show images as JSON
    Inspect(InspectArgs),
    /// Remove images
    Rmi(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Remove unused images (dangling ones; with -a every image no mount uses)
    Prune(PruneArgs),
    /// Write images to an oci-archive or docker-archive
    Save(SaveArgs),
    /// Show disk usage: images, layers, mounts
    Df(DfArgs),
    /// Check the store against its metadata; repair what is safe
    Fsck(FsckArgs),
    /// Pull an image (or every tag of a repository) from a registry
    Pull(PullArgs),
    /// Push an image (or every tag of a repository) to a registry
    Push(PushArgs),
    /// Log in to a registry (credentials are stored as docker stores them)
    Login(LoginArgs),
    /// Log out from a registry (remove its stored credentials)
    Logout(LogoutArgs),
    /// Search a registry for repositories ([REGISTRY/]TERM; Docker Hub by default)
    Search(SearchArgs),
    /// Manifests as a registry serves them, and manifest lists of your own (docker manifest)
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Run a command in a new container (a writable mount of the image), in the foreground
    Run(RunArgs),
    /// Containers (writable mounts): docker's `container` command forms
    #[command(subcommand)]
    Container(ContainerCommand),
    /// docker's `image` command forms (image ls, image rm, ...)
    #[command(subcommand)]
    Image(ImageCommand),
    /// Serve containerd's snapshots from this store (a proxy snapshotter), in the foreground
    Snapshotter(SnapshotterArgs),
}

#[derive(Args, Debug)]
pub struct SnapshotterArgs {
    /// The unix socket to serve containerd's Snapshots API on (containerd's proxy_plugins address)
    #[arg(long)]
    pub address: PathBuf,
    /// Never fetch a layer from its registry for a Prepare with CRI labels (the fast pull):
    /// containerd then fetches and applies every layer lamina does not hold
    #[arg(long)]
    pub no_fetch: bool,
}

/// `lamina image ...`: the same commands under docker's `docker image` names.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images (= images)
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Pull an image from a registry (= pull)
    Pull(PullArgs),
    /// Push an image to a registry (= push)
    Push(PushArgs),
    /// Remove images (= rmi)
    #[command(aliases = ["rmi", "remove"])]
    Rm(RmiArgs),
    /// Give an image another name (= tag)
    Tag(TagArgs),
    /// Show images as JSON (= inspect)
    Inspect(InspectArgs),
    /// Show the history of an image (= history)
    History(HistoryArgs),
    /// Remove unused images (= prune)
    Prune(PruneArgs),
    /// Write images to an archive (= save)
    Save(SaveArgs),
    /// Load images from a layout or archive (= load)
    Load(LoadArgs),
    /// Make a one-layer image from a root filesystem (= import)
    Import(ImportArgs),
}

/// How to reach a registry (shared by pull, login and manifest).
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Allow plain HTTP and unverified HTTPS (docker's insecure registry)
    #[arg(long)]
    pub insecure: bool,
    /// Also trust the CA certificates (*.crt, e.g. ca.crt) in this directory
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// NAME[:TAG]; the registry is docker.io unless NAME starts with one
    pub reference: String,
    /// Push every tag of the repository that the store holds
    #[arg(long, short = 'a')]
    pub all_tags: bool,
    /// Compression of the layers the registry does not have yet (default: a blob kept by
    /// --keep-blobs as it is, else gzip)
    #[arg(long, value_enum)]
    pub compression_format: Option<crate::engine::Compression>,
    /// Compression level, as buildx's compression-level: gzip 0-9 (default 6), zstd 0-22 (default 3)
    #[arg(long, value_name = "N")]
    pub compression_level: Option<i32>,
    /// Print only the references pushed
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// NAME[:TAG|@DIGEST]; the registry is docker.io unless NAME starts with one
    pub reference: String,
    /// Pull every tag of the repository
    #[arg(long, short = 'a')]
    pub all_tags: bool,
    /// Platform to pick from an index (os/arch[/variant]); default: this host
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the reference pulled
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Most bytes of files a layer may claim per byte of its blob (sparse holes included; 0: no cap)
    #[arg(long, value_name = "RATIO", default_value_t = crate::engine::DEFAULT_MAX_EXPANSION)]
    pub max_layer_expansion: u64,
    /// Keep the layers' compressed blobs beside them, so that push sends them as they are
    #[arg(long)]
    pub keep_blobs: bool,
    /// Print the pull's lines on stderr (`run` pulling a missing image, as docker does)
    #[arg(skip)]
    pub to_stderr: bool,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry host[:port] (default docker.io)
    pub registry: Option<String>,
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Password (prefer --password-stdin: a command line is visible to other users)
    #[arg(long, short = 'p')]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry host[:port] (default docker.io)
    pub registry: Option<String>,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// [REGISTRY/]TERM: the registry is Docker Hub unless the first component is a host
    pub term: String,
    /// is-official=BOOL, is-automated=BOOL, stars=N (at least N stars)
    #[arg(long, short = 'f', value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Most results to show (1 to 100)
    #[arg(long, default_value_t = crate::engine::DEFAULT_SEARCH_LIMIT)]
    pub limit: usize,
    /// Go template for each result (.Name .Description .StarCount .IsOfficial .IsAutomated), or table/json
    #[arg(long)]
    pub format: Option<String>,
    /// Do not cut descriptions short
    #[arg(long)]
    pub no_trunc: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Subcommand, Debug)]
pub enum ManifestCommand {
    /// Print a manifest or index as the registry serves it, or a local manifest list
    Inspect(ManifestInspectArgs),
    /// Create a local manifest list from images in a registry, for annotating and pushing
    Create(ManifestCreateArgs),
    /// Set the platform of an image in a local manifest list
    Annotate(ManifestAnnotateArgs),
    /// Push a local manifest list to its repository
    Push(ManifestPushArgs),
    /// Delete local manifest lists
    #[command(alias = "remove")]
    Rm(ManifestRmArgs),
}

#[derive(Args, Debug)]
pub struct ManifestInspectArgs {
    /// [LIST] NAME[:TAG|@DIGEST]: an image of a local list, a local list, or a registry's manifest
    #[arg(value_name = "[LIST] REF", num_args = 1..=2, required = true)]
    pub names: Vec<String>,
    /// Also each manifest's platform, size and contents (docker's verbose form)
    #[arg(long, short = 'v')]
    pub verbose: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct ManifestCreateArgs {
    /// The list's NAME[:TAG] (the repository it will be pushed to)
    pub list: String,
    /// The images (NAME[:TAG|@DIGEST] in a registry), one per platform
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Add to (or refresh) an existing local list
    #[arg(long, short = 'a')]
    pub amend: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct ManifestAnnotateArgs {
    /// The local list
    pub list: String,
    /// The image of the list to annotate
    pub image: String,
    /// Set the operating system
    #[arg(long, default_value = "")]
    pub os: String,
    /// Set the architecture
    #[arg(long, default_value = "")]
    pub arch: String,
    /// Set the architecture variant
    #[arg(long, default_value = "")]
    pub variant: String,
    /// Set the operating system version
    #[arg(long, default_value = "")]
    pub os_version: String,
    /// Add operating system features (comma-separated, or the flag repeated)
    #[arg(long, value_delimiter = ',')]
    pub os_features: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ManifestPushArgs {
    /// The local list
    pub list: String,
    /// Remove the local list once it is pushed
    #[arg(long, short = 'p')]
    pub purge: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct ManifestRmArgs {
    /// The local lists
    #[arg(required = true)]
    pub lists: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// OCI layout dir, oci-archive or docker-archive, optionally PATH:REF
    pub source: String,
    /// Name the loaded image (NAME[:TAG]); the source must hold one image
    #[arg(long, short = 't')]
    pub tag: Option<String>,
    /// Platform to pick from an index (os/arch[/variant]); default: this host
    #[arg(long)]
    pub platform: Option<String>,
    /// Most bytes of files a layer may claim per byte of its blob (sparse holes included; 0: no cap)
    #[arg(long, value_name = "RATIO", default_value_t = crate::engine::DEFAULT_MAX_EXPANSION)]
    pub max_layer_expansion: u64,
    /// Keep the layers' compressed blobs beside them, so that push sends them as they are
    #[arg(long)]
    pub keep_blobs: bool,
    /// Print only the image IDs
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Root filesystem: a directory or a tar (plain, gzip or zstd)
    pub rootfs: PathBuf,
    /// NAME[:TAG] of the new image
    pub name: String,
    /// Image config change, e.g. 'CMD ["/bin/sh"]' (repeatable)
    #[arg(long, short = 'c')]
    pub change: Vec<String>,
    /// Commit message, stored in the history
    #[arg(long, short = 'm')]
    pub message: Option<String>,
}

#[derive(Args, Debug)]
pub struct MountArgs {
    /// Image: name[:tag], name@sha256:..., or an image ID (prefix)
    pub image: String,
    /// Mount id (default: random)
    #[arg(long)]
    pub name: Option<String>,
    /// Where to mount (default: ROOT/mounts/ID/merged)
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// No writable layer; writes are refused
    #[arg(long)]
    pub read_only: bool,
    /// overlay (default) or copy
    #[arg(long, value_enum, default_value = "overlay")]
    pub driver: Driver,
    /// Also write an OCI runtime bundle here (config.json; the image is mounted at DIR/rootfs)
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Prepare and record the mount but do not mount (the runtime mounts what --format json lists)
    #[arg(long)]
    pub no_mount: bool,
    /// Output format: text (the mountpoint) or json
    #[arg(long, value_enum, default_value = "text")]
    pub format: MountFormat,
    /// Command for the bundle's process.args (replaces the image's Cmd)
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UmountArgs {
    /// Mount id (or unique prefix) or mount target
    #[arg(required = true)]
    pub mounts: Vec<String>,
}

#[derive(Args, Debug)]
pub struct MountsArgs {
    /// Only writable mounts (`container ls`)
    #[arg(skip)]
    pub writable_only: bool,
    /// Go template ({{.ID}} {{.Image}} {{.ImageID}} {{.Driver}} {{.Mode}} {{.CreatedSince}}
    /// {{.CreatedAt}} {{.Mountpoint}}), table, json
    #[arg(long)]
    pub format: Option<String>,
    /// Print only mount ids
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub id: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    pub id: String,
    pub name: String,
    #[arg(long, short = 'm')]
    pub message: Option<String>,
    /// Image config change, e.g. 'CMD ["/bin/sh"]' (repeatable)
    #[arg(long, short = 'c')]
    pub change: Vec<String>,
    #[arg(long, short = 'a')]
    pub author: Option<String>,
    /// Most bytes sparse files may claim per byte they take on disk (0: no cap)
    #[arg(long, value_name = "RATIO", default_value_t = crate::engine::DEFAULT_MAX_EXPANSION)]
    pub max_layer_expansion: u64,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    pub reference: Option<String>,
    #[arg(long, short = 'a')]
    pub all: bool,
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[arg(long)]
    pub digests: bool,
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(long, short = 'f')]
    pub filter: Vec<String>,
    /// Go template ({{.Repository}} {{.Tag}} {{.Digest}} {{.ID}} {{.CreatedSince}} {{.CreatedAt}}
    /// {{.Size}} ...), table, table TEMPLATE, json
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Go template run on each image (e.g. '{{.Id}}', '{{json .Config}}'), or json
    #[arg(long, short = 'f')]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    #[arg(long, short = 'f')]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    pub image: String,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Go template ({{.ID}} {{.CreatedSince}} {{.CreatedAt}} {{.CreatedBy}} {{.Size}} {{.Comment}}), table, json
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove every image no mount uses, not just dangling ones
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(long, short = 'f')]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Archive file to write
    #[arg(long, short = 'o', required = true)]
    pub output: PathBuf,
    /// oci-archive or docker-archive
    #[arg(long, value_enum, default_value = "oci-archive")]
    pub format: ArchiveFormat,
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Per image, layer and mount detail
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct FsckArgs {
    /// Repair what is safe to repair
    #[arg(long)]
    pub repair: bool,
    /// Re-hash every layer's files against the list recorded when it was stored
    #[arg(long)]
    pub verify: bool,
}

/// `mount --format`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountFormat {
    /// The mountpoint
    Text,
    Json,
}

/// `lamina container ...`: docker's forms, over the same arguments as the top-level commands.
#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Run a command in a new container (same as `lamina run`)
    Run(RunArgs),
    /// List containers: the writable mounts
    #[command(alias = "list", alias = "ps")]
    Ls(MountsArgs),
    /// Remove containers: unmount and discard their writable layers (same as `lamina umount`)
    #[command(alias = "remove")]
    Rm(UmountArgs),
    /// Show a container's changes (same as `lamina diff`)
    Diff(DiffArgs),
    /// Turn a container's changes into a new image (same as `lamina commit`)
    Commit(CommitArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Image: name[:tag], name@sha256:..., or an image ID (prefix)
    pub image: String,
    /// Command and arguments (replace the image's Cmd)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Remove the container (mount, writable layer, bundle) when it exits
    #[arg(long)]
    pub rm: bool,
    /// Name of the container (its mount id; default: random)
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (K=V; a bare K takes lamina's value)
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// Read environment variables from a file (K=V lines)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container (absolute)
    #[arg(long = "workdir", short = 'w', value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as: name|uid[:group|gid]
    #[arg(long, short = 'u', value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Replace the image's Entrypoint (and drop its Cmd)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// overlay (default) or copy
    #[arg(long, value_enum, default_value = "overlay")]
    pub driver: Driver,
    /// OCI runtime: crun, runc or a path (default: crun if installed, else runc)
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Pull the image before running: missing, always or never
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullPolicy,
    /// Platform to pull (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// Bind-mount a host path: HOST:CONTAINER[:ro]
    #[arg(long = "volume", short = 'v', value_name = "HOST:CTR[:ro]")]
    pub volumes: Vec<String>,
    /// none (own namespace, loopback only) or host
    #[arg(long, value_enum, default_value = "none")]
    pub network: NetworkArg,
    /// Container hostname (default: the first 12 characters of its id)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Keep stdin open: it is the container's stdin
    #[arg(long, short = 'i')]
    pub interactive: bool,
    /// Give the container a terminal
    #[arg(long, short = 't')]
    pub tty: bool,
}

/// `run --pull`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

/// `run --network`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkArg {
    None,
    Host,
}
