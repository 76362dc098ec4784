//! Local manifest lists, as `docker manifest` keeps them: `create` fetches each image's manifest
//! (and its config, for the platform) from the registry and keeps it in the store under the
//! list's name; `annotate` changes a member's platform; `rm` forgets a list; `inspect` shows it.
//! `push` (manifest_list_push.rs) assembles the list and sends it.
//!
//! Names are normalised as docker normalises them (`reference.TagNameOnly`: `latest` when a name
//! has neither tag nor digest), and messages are docker's. A command that fails changes nothing:
//! every member is fetched before the one transaction that stores them.

use super::pull::wanted;
use super::{Engine, EngineError, Result};
use crate::image::manifest_list::{build_list, config_platform, is_valid_os_arch};
use crate::image::media_types as mt;
use crate::image::{parse_manifest, Descriptor, ManifestKind, Platform, Reference};
use crate::source::registry::{RegistryOptions, RegistrySource};
use crate::source::{read_verified, MAX_CONFIG_SIZE};

pub use crate::store::ListMember;

/// A local manifest list: its name and its members, in docker's order.
#[derive(Debug, Clone)]
pub struct LocalList {
    pub reference: Reference,
    pub members: Vec<ListMember>,
}

/// What `manifest annotate` sets; an empty value (or no os feature) changes nothing.
#[derive(Debug, Clone, Default)]
pub struct PlatformAnnotation {
    pub os: String,
    pub arch: String,
    pub variant: String,
    pub os_version: String,
    pub os_features: Vec<String>,
}

/// `name` with `latest` when it has neither tag nor digest.
fn normalize(name: &str) -> Result<Reference> {
    Ok(Reference::parse(name)
        .map_err(|e| EngineError::Invalid(e.to_string()))?
        .with_default_tag())
}

/// The name of a list: a tag (a list named by a digest could never be pushed under that name).
fn list_name(name: &str) -> Result<Reference> {
    let invalid = |reason: String| {
        EngineError::Invalid(format!(
            "error parsing name for manifest list {name}: {reason}"
        ))
    };
    let r = Reference::parse(name)
        .map_err(|e| invalid(e.to_string()))?
        .with_default_tag();
    if r.digest.is_some() {
        return Err(invalid(
            "a manifest list is named by a tag, not a digest".into(),
        ));
    }
    Ok(r)
}

impl LocalList {
    /// The list as `push` sends it and `inspect` shows it (its media type and bytes): every
    /// member must be on the list's registry, as docker requires (a list can only name
    /// manifests of its own repository, and a registry cannot mount from another registry).
    pub fn document(&self) -> Result<(String, Vec<u8>)> {
        for m in &self.members {
            let domain = Reference::parse(&m.reference)
                .map(|r| r.domain)
                .unwrap_or_default();
            if domain != self.reference.domain {
                return Err(EngineError::Invalid(format!(
                    "cannot use source images from a different registry than the target image: \
                     {domain} != {}",
                    self.reference.domain
                )));
            }
        }
        let descriptors: Vec<&Descriptor> = self.members.iter().map(|m| &m.descriptor).collect();
        build_list(&descriptors).map_err(|e| EngineError::Invalid(e.to_string()))
    }
}

impl Engine {
    /// `manifest create LIST IMAGE...`: fetches each image's manifest and stores the list. An
    /// existing list is refused unless `amend`; an image already in it keeps what it holds
    /// (annotations included), as docker keeps it. Returns the list's name.
    pub fn manifest_list_create(
        &mut self,
        list: &str,
        images: &[String],
        amend: bool,
        opts: &RegistryOptions,
    ) -> Result<Reference> {
        let list_ref = list_name(list)?;
        let key = list_ref.full();
        let existing = self.store.manifest_list(&key)?;
        if !existing.is_empty() && !amend {
            return Err(EngineError::Invalid(
                "refusing to amend an existing manifest list with no --amend flag".into(),
            ));
        }
        let mut members = Vec::with_capacity(images.len());
        for image in images {
            let r = normalize(image)?;
            match existing.iter().find(|m| m.reference == r.full()) {
                Some(m) => members.push(m.clone()),
                None => members.push(fetch_member(&r, opts)?),
            }
        }
        self.store.save_manifest_list(&key, &members)?;
        Ok(list_ref)
    }

    /// `manifest annotate LIST IMAGE`: sets the member's platform fields (os features are added
    /// once each); the resulting os/arch must be one docker knows.
    pub fn manifest_list_annotate(
        &mut self,
        list: &str,
        image: &str,
        a: &PlatformAnnotation,
    ) -> Result<()> {
        let mut member = self.manifest_list_member(list, image)?;
        let p = member
            .descriptor
            .platform
            .get_or_insert_with(|| Platform::new("", "", None));
        if !a.os.is_empty() {
            p.os = a.os.clone();
        }
        if !a.arch.is_empty() {
            p.architecture = a.arch.clone();
        }
        for f in &a.os_features {
            if !p.os_features.contains(f) {
                p.os_features.push(f.clone());
            }
        }
        if !a.variant.is_empty() {
            p.variant = Some(a.variant.clone());
        }
        if !a.os_version.is_empty() {
            p.os_version = Some(a.os_version.clone());
        }
        if !is_valid_os_arch(&p.os, &p.architecture) {
            return Err(EngineError::Invalid(format!(
                "manifest entry for image has unsupported os/arch combination: {}/{}",
                p.os, p.architecture
            )));
        }
        let key = list_name(list)?.full();
        self.store
            .save_manifest_list(&key, std::slice::from_ref(&member))?;
        Ok(())
    }

    /// The local list `list`, or None when there is none.
    pub fn manifest_list(&self, list: &str) -> Result<Option<LocalList>> {
        let reference = list_name(list)?;
        let members = self.store.manifest_list(&reference.full())?;
        Ok((!members.is_empty()).then_some(LocalList { reference, members }))
    }

    /// The member `image` of the local list `list`.
    pub fn manifest_list_member(&self, list: &str, image: &str) -> Result<ListMember> {
        let wanted = normalize(image)?.full();
        let members = self.store.manifest_list(&list_name(list)?.full())?;
        members
            .into_iter()
            .find(|m| m.reference == wanted)
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "manifest for image {image} does not exist in {list}"
                ))
            })
    }

    /// `manifest rm LIST`: forgets the local list.
    pub fn manifest_list_remove(&mut self, list: &str) -> Result<()> {
        let key = normalize(list)?.full();
        if !self.store.remove_manifest_list(&key)? {
            return Err(no_such_list(&key));
        }
        Ok(())
    }
}

/// docker's words for a local list that does not exist.
pub(super) fn no_such_list(full_name: &str) -> EngineError {
    EngineError::NotFound(format!("No such manifest: {full_name}"))
}

/// One image's manifest from the registry, with the platform its config states (what docker's
/// registry client gives `manifest create`). A manifest list is refused: a list's members are
/// images.
fn fetch_member(reference: &Reference, opts: &RegistryOptions) -> Result<ListMember> {
    let source = RegistrySource::open(reference, opts)?;
    let fetched = source.fetch_manifest(&wanted(reference))?;
    // A generic Content-Type leaves the decision to the document's mediaType.
    let served = (mt::is_manifest(&fetched.media_type) || mt::is_index(&fetched.media_type))
        .then_some(fetched.media_type.as_str());
    let parsed = parse_manifest(&fetched.bytes, served)
        .map_err(|e| EngineError::Invalid(format!("manifest {}: {e}", fetched.digest)))?;
    let manifest = match parsed {
        ManifestKind::Index(_) => {
            return Err(EngineError::Invalid(format!(
                "{} is a manifest list",
                reference.full()
            )))
        }
        ManifestKind::Manifest(m) => m,
    };
    let config = read_verified(&source, &manifest.config, "config", MAX_CONFIG_SIZE)?;
    let platform = config_platform(&config)
        .map_err(|e| EngineError::Invalid(format!("config {}: {e}", manifest.config.digest)))?;
    let media_type = manifest
        .media_type
        .clone()
        .or(served.map(str::to_string))
        .unwrap_or_else(|| mt::OCI_MANIFEST.to_string());
    let mut descriptor = Descriptor::new(&media_type, fetched.digest, fetched.bytes.len() as u64);
    descriptor.platform = Some(platform);
    Ok(ListMember {
        reference: reference.full(),
        descriptor,
        raw: fetched.bytes,
    })
}
