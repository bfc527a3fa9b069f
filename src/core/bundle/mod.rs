//! Proof bundle v1 (docs/EVIDENCE.md, the proof bundle): one zip holding everything a judge needs to check what
//! happened to a letter offline — the documents as deposited, every evidence record with its
//! seal and timestamp, the trust anchors, and `VERIFY.txt` explaining how to check it all with
//! `openssl` and `sha256sum` alone.
//!
//! The zip is ASiC-E compatible (ETSI EN 319 162-1): `mimetype` first and stored,
//! `META-INF/ASiCManifest.xml` listing every file with its SHA-256, and
//! `META-INF/signature001.p7s`, a detached CMS seal over that manifest. It is reproducible:
//! entries carry a fixed date and a fixed order, and the manifest seal is kept per manifest
//! digest, so the same letter state always yields the same bytes.

use std::io::{Read, Write};

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::core::records::{DocumentRow, EvidenceRow, RecordRenewal};

mod container;
pub mod verify;

/// Media type of an ASiC-E container, the content of the `mimetype` entry.
pub const ASIC_E_MIMETYPE: &str = "application/vnd.etsi.asic-e+zip";
/// Bundle format version.
pub const BUNDLE_VERSION: u32 = 1;
/// Path of the ASiC manifest.
pub const ASIC_MANIFEST: &str = "META-INF/ASiCManifest.xml";
/// Path of the seal over the ASiC manifest.
pub const ASIC_SIGNATURE: &str = "META-INF/signature001.p7s";
/// Path of the digest list in `sha256sum` format (checked with `sha256sum -c`).
pub const CHECKSUMS: &str = "SHA256SUMS";
/// Path of the provider's trust anchors inside the bundle.
pub const ROOTS: &str = "certs/roots.pem";

/// Where an entry's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Bytes in memory (records, seals, tokens, texts).
    Bytes(Vec<u8>),
    /// A document of the content store, by its SHA-256: streamed through a decrypting reader
    /// given to [`write`] (never held whole in memory, never written to disk in plaintext).
    Document(String),
}

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the zip.
    pub path: String,
    /// Its bytes.
    pub source: Source,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type, for the ASiC manifest.
    pub media_type: &'static str,
}

/// A bundle ready to be sealed and written.
#[derive(Debug, Clone)]
pub struct BundlePlan {
    /// The letter.
    pub letter_id: String,
    /// Data entries (everything but `mimetype` and `META-INF/`), in order.
    pub entries: Vec<Entry>,
    /// `META-INF/ASiCManifest.xml`.
    pub asic_manifest: Vec<u8>,
}

impl BundlePlan {
    /// Hex SHA-256 of the ASiC manifest: the key under which its seal is kept.
    pub fn asic_manifest_sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.asic_manifest))
    }
}

/// What goes into a bundle.
pub struct BundleInput<'a> {
    /// The letter id.
    pub letter_id: &'a str,
    /// Its evidence rows, in sequence order.
    pub evidence: &'a [EvidenceRow],
    /// Its documents, in order.
    pub documents: &'a [DocumentRow],
    /// PEM trust anchors of the provider.
    pub roots_pem: &'a str,
    /// Human-readable PDF proofs (`proofs/<name>`), rendered from the same evidence.
    pub proofs: &'a [(String, Vec<u8>)],
    /// The transparency log's signed tree head covering every record, and the records'
    /// inclusion proofs against it (`log/`).
    pub log: Option<&'a BundleLog>,
    /// The archive timestamp renewals of the records (`renewals/`), by record then
    /// generation; empty for a letter never renewed (then nothing of `renewals/` appears, and
    /// the bundle is exactly what earlier versions made).
    pub renewals: &'a [RecordRenewal],
    /// The provider's legal identity, named at the top of `VERIFY.txt`.
    pub provider: &'a crate::core::provider::ProviderIdentity,
}

/// Folder of the renewal records and tokens: `renewals/NN-<Event>.renewal-G.json|.tsr`, where
/// `NN-<Event>` is the stem of the evidence file and `G` the generation (1, 2, …).
pub const RENEWALS_DIR: &str = "renewals/";

/// The path stem of generation `generation` of the renewals of evidence file `evidence_stem`
/// (`evidence/NN-<Event>`).
pub fn renewal_stem(evidence_stem: &str, generation: u32) -> String {
    let base = evidence_stem
        .strip_prefix("evidence/")
        .unwrap_or(evidence_stem);
    format!("{RENEWALS_DIR}{base}.renewal-{generation}")
}

/// Path of the tree head (canonical JSON, as sealed) in a bundle.
pub const LOG_TREE_HEAD: &str = "log/tree-head.json";
/// Path of the seal over the tree head.
pub const LOG_TREE_HEAD_SEAL: &str = "log/tree-head.p7s";
/// Path of the timestamp token over the tree head.
pub const LOG_TREE_HEAD_TOKEN: &str = "log/tree-head.tsr";
/// Path of the inclusion proofs.
pub const LOG_INCLUSION: &str = "log/inclusion.json";

/// The log material of a bundle.
#[derive(Debug, Clone)]
pub struct BundleLog {
    /// The tree head's canonical JSON bytes.
    pub head: Vec<u8>,
    /// Its CMS seal.
    pub seal: Vec<u8>,
    /// Its RFC 3161 token.
    pub timestamp_token: Vec<u8>,
    /// One inclusion proof per evidence record, in the records' order.
    pub inclusion: Vec<crate::core::log::InclusionProof>,
}

/// `log/inclusion.json`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct InclusionFile {
    /// Size of the tree the proofs are against (the tree head's).
    pub tree_size: u64,
    /// One proof per evidence record, in the records' order.
    pub proofs: Vec<crate::core::log::InclusionProof>,
}

#[derive(Serialize)]
struct ManifestFile<'a> {
    path: &'a str,
    sha256: &'a str,
    size: u64,
}

#[derive(Serialize)]
struct Manifest<'a> {
    version: u32,
    letter_id: &'a str,
    files: Vec<ManifestFile<'a>>,
}

/// Lays out the bundle of a letter. Pure apart from nothing: document digests and sizes come
/// from the store's metadata (their identity), not from re-reading the files.
///
/// Order of the data entries: `manifest.json`, the documents, the evidence, the trust anchors,
/// `VERIFY.txt`, then `SHA256SUMS`, which lists every entry before it in `sha256sum` format
/// and is itself listed, like every other entry, in the sealed ASiC manifest.
pub fn plan(input: &BundleInput<'_>) -> BundlePlan {
    let mut entries = Vec::new();
    for (i, doc) in input.documents.iter().enumerate() {
        entries.push(Entry {
            path: format!("documents/{:02}-{}", i + 1, safe_name(&doc.filename)),
            source: Source::Document(doc.sha256.clone()),
            sha256: doc.sha256.clone(),
            size: doc.size.max(0) as u64,
            media_type: "application/pdf",
        });
    }
    evidence_entries(input, &mut entries);
    for (name, pdf) in input.proofs {
        entries.push(bytes_entry(
            format!("proofs/{}", safe_name(name)),
            pdf.clone(),
            "application/pdf",
        ));
    }
    if let Some(log) = input.log {
        log_entries(log, &mut entries);
    }
    entries.push(bytes_entry(
        ROOTS.into(),
        input.roots_pem.as_bytes().to_vec(),
        "application/x-pem-file",
    ));
    entries.push(bytes_entry(
        "VERIFY.txt".into(),
        verify_text(input.letter_id, input.provider, &entries).into_bytes(),
        "text/plain",
    ));
    let manifest = Manifest {
        version: BUNDLE_VERSION,
        letter_id: input.letter_id,
        files: entries
            .iter()
            .map(|e| ManifestFile {
                path: &e.path,
                sha256: &e.sha256,
                size: e.size,
            })
            .collect(),
    };
    // RFC 8785: the manifest's bytes are reproducible too.
    let manifest_bytes = crate::core::canonical::to_vec(&manifest).unwrap_or_default();
    entries.insert(
        0,
        bytes_entry("manifest.json".into(), manifest_bytes, "application/json"),
    );
    let sums = checksums(&entries);
    entries.push(bytes_entry(
        CHECKSUMS.into(),
        sums.into_bytes(),
        "text/plain",
    ));
    let asic_manifest = asic_manifest(&entries);
    BundlePlan {
        letter_id: input.letter_id.to_string(),
        entries,
        asic_manifest,
    }
}

/// The evidence entries: each record with its seal and token, then the renewals of every
/// record (after all the evidence, so a bundle without them keeps the v1 layout).
fn evidence_entries(input: &BundleInput<'_>, entries: &mut Vec<Entry>) {
    for (i, e) in input.evidence.iter().enumerate() {
        let stem = format!("evidence/{:02}-{}", i + 1, safe_name(&e.event));
        for (ext, bytes, media_type) in [
            ("json", &e.record, "application/json"),
            ("p7s", &e.seal, "application/pkcs7-signature"),
            ("tsr", &e.timestamp_token, "application/timestamp-token"),
        ] {
            entries.push(bytes_entry(
                format!("{stem}.{ext}"),
                bytes.clone(),
                media_type,
            ));
        }
    }
    for (i, e) in input.evidence.iter().enumerate() {
        let stem = format!("evidence/{:02}-{}", i + 1, safe_name(&e.event));
        for renewal in input.renewals.iter().filter(|r| r.evidence_id == e.id) {
            let renewal_stem = renewal_stem(&stem, renewal.generation.max(0) as u32);
            entries.push(bytes_entry(
                format!("{renewal_stem}.json"),
                renewal.record.clone(),
                "application/json",
            ));
            entries.push(bytes_entry(
                format!("{renewal_stem}.tsr"),
                renewal.timestamp_token.clone(),
                "application/timestamp-token",
            ));
        }
    }
}

/// The transparency log entries: the sealed, timestamped tree head and the inclusion proofs.
fn log_entries(log: &BundleLog, entries: &mut Vec<Entry>) {
    for (path, bytes, media_type) in [
        (LOG_TREE_HEAD, &log.head, "application/json"),
        (LOG_TREE_HEAD_SEAL, &log.seal, "application/pkcs7-signature"),
        (
            LOG_TREE_HEAD_TOKEN,
            &log.timestamp_token,
            "application/timestamp-token",
        ),
    ] {
        entries.push(bytes_entry(path.into(), bytes.clone(), media_type));
    }
    let file = InclusionFile {
        tree_size: log.inclusion.first().map(|p| p.tree_size).unwrap_or(0),
        proofs: log.inclusion.clone(),
    };
    entries.push(bytes_entry(
        LOG_INCLUSION.into(),
        crate::core::canonical::to_vec(&file).unwrap_or_default(),
        "application/json",
    ));
}

/// `SHA256SUMS`: one `<hex>  <path>` line per entry, the format `sha256sum -c` reads. Paths
/// are [`safe_name`]s under fixed folders, so they hold no space, quote or newline.
fn checksums(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| format!("{}  {}\n", e.sha256, e.path))
        .collect()
}

/// Writes the zip: `mimetype` (first), the data entries, the ASiC manifest and its seal.
/// `documents` yields, per document entry and in order, the CRC-32 of its bytes (computed
/// by the caller on a first read) and a reader of those bytes.
///
/// Every entry is STORED with its CRC-32 and sizes in the local header and no data
/// descriptor (APPNOTE.TXT §4.3.7, general purpose bit 3 clear), so that streaming readers
/// (`bsdtar -xf -`, Java's `ZipInputStream`) read the same files as the central directory
/// lists. Documents are PDFs, already compressed; the other files are small. The zip still
/// goes out as it is made: documents pass through a few kilobytes at a time and the whole
/// bundle is never held in memory or written to disk. Fixed date, order and mode: the same
/// plan and seal always give the same bytes.
pub fn write_stream<W: Write, R: Read>(
    plan: &BundlePlan,
    seal: &[u8],
    out: W,
    documents: impl IntoIterator<Item = (u32, R)>,
) -> std::io::Result<()> {
    let mut documents = documents.into_iter();
    let mut zip = StoredZip {
        out,
        offset: 0,
        count: 0,
        central: Vec::new(),
    };
    zip.bytes("mimetype", ASIC_E_MIMETYPE.as_bytes())?;
    for entry in &plan.entries {
        match &entry.source {
            Source::Bytes(bytes) => zip.bytes(&entry.path, bytes)?,
            Source::Document(sha256) => {
                let (crc, reader) = documents.next().ok_or_else(|| {
                    std::io::Error::other(format!("no reader given for document {sha256}"))
                })?;
                zip.entry(&entry.path, crc, entry.size, reader)?;
            }
        }
    }
    zip.bytes(ASIC_MANIFEST, &plan.asic_manifest)?;
    zip.bytes(ASIC_SIGNATURE, seal)?;
    zip.finish()
}

/// CRC-32 (ISO-HDLC, the zip one, APPNOTE.TXT §4.4.7) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// A zip of stored entries written front to back (APPNOTE.TXT §4.3.6): local header and
/// data per entry, then the central directory and its end record. No zip64: an entry, an
/// offset or a count past the 32-bit (16-bit for counts) fields is an error.
struct StoredZip<W> {
    out: W,
    offset: u64,
    count: usize,
    central: Vec<u8>,
}

/// 1980-01-01 00:00 in MS-DOS date format (APPNOTE.TXT §4.4.6): day 1, month 1, year 0.
const DOS_DATE: u16 = (1 << 5) | 1;
/// Version needed to extract: 1.0, stored entries (APPNOTE.TXT §4.4.3.2).
const VERSION_NEEDED: u16 = 10;
/// Version made by: UNIX (3) in the high byte, 2.0 in the low (APPNOTE.TXT §4.4.2), so that
/// the external attributes carry the mode.
const VERSION_MADE_BY: u16 = (3 << 8) | 20;
/// Regular file, mode 0644, in the high half of the external attributes.
const EXTERNAL_ATTRIBUTES: u32 = 0o100_644 << 16;

impl<W: Write> StoredZip<W> {
    fn bytes(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.entry(name, crc32(bytes), bytes.len() as u64, bytes)
    }

    fn entry(
        &mut self,
        name: &str,
        crc: u32,
        size: u64,
        mut reader: impl Read,
    ) -> std::io::Result<()> {
        let too_big = |what: &str| std::io::Error::other(format!("{name}: {what} needs zip64"));
        let size32 = u32::try_from(size).map_err(|_| too_big("its size"))?;
        let offset32 = u32::try_from(self.offset).map_err(|_| too_big("its offset"))?;
        let name_len = u16::try_from(name.len()).map_err(|_| too_big("its name"))?;
        // §4.3.7 local file header: sizes and CRC known before the data, bit 3 clear.
        let mut header = Vec::with_capacity(30 + name.len());
        header.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        header.extend_from_slice(&VERSION_NEEDED.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // flags
        header.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        header.extend_from_slice(&0u16.to_le_bytes()); // time 00:00:00
        header.extend_from_slice(&DOS_DATE.to_le_bytes());
        header.extend_from_slice(&crc.to_le_bytes());
        header.extend_from_slice(&size32.to_le_bytes());
        header.extend_from_slice(&size32.to_le_bytes());
        header.extend_from_slice(&name_len.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // extra field length
        header.extend_from_slice(name.as_bytes());
        self.out.write_all(&header)?;
        // The data, checked against what the header promised: a reader that gives other
        // bytes fails the bundle rather than making a zip that lies.
        let mut hasher = crc32fast::Hasher::new();
        let mut written = 0u64;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            written += n as u64;
            self.out.write_all(&buffer[..n])?;
        }
        if written != size || hasher.finalize() != crc {
            return Err(std::io::Error::other(format!(
                "{name}: {written} bytes read, not the {size} bytes with the CRC-32 announced"
            )));
        }
        // §4.3.12 central directory header.
        let c = &mut self.central;
        c.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        c.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
        c.extend_from_slice(&header[4..30]); // version needed … extra length, as above
        c.extend_from_slice(&0u16.to_le_bytes()); // comment length
        c.extend_from_slice(&0u16.to_le_bytes()); // disk number start
        c.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        c.extend_from_slice(&EXTERNAL_ATTRIBUTES.to_le_bytes());
        c.extend_from_slice(&offset32.to_le_bytes());
        c.extend_from_slice(name.as_bytes());
        self.offset += header.len() as u64 + size;
        self.count += 1;
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<()> {
        let too_big = || std::io::Error::other("the bundle needs zip64");
        // 0xFFFF itself would announce zip64 (APPNOTE.TXT §4.4.22).
        let count = u16::try_from(self.count)
            .ok()
            .filter(|&c| c < u16::MAX)
            .ok_or_else(too_big)?;
        let cd_offset = u32::try_from(self.offset).map_err(|_| too_big())?;
        let cd_size = u32::try_from(self.central.len()).map_err(|_| too_big())?;
        self.out.write_all(&self.central)?;
        // §4.3.16 end of central directory record, no comment.
        let mut end = Vec::with_capacity(22);
        end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes()); // this disk
        end.extend_from_slice(&0u16.to_le_bytes()); // disk of the central directory
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&cd_size.to_le_bytes());
        end.extend_from_slice(&cd_offset.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes()); // comment length
        self.out.write_all(&end)?;
        self.out.flush()
    }
}

fn bytes_entry(path: String, bytes: Vec<u8>, media_type: &'static str) -> Entry {
    Entry {
        sha256: hex::encode(Sha256::digest(&bytes)),
        size: bytes.len() as u64,
        path,
        source: Source::Bytes(bytes),
        media_type,
    }
}

/// A file name safe in a zip path, an XML attribute and a shell command.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.is_empty() {
        "document".into()
    } else {
        cleaned.to_string()
    }
}

/// ETSI EN 319 162-1 §A.7 ASiCManifest: every data object with its SHA-256. Each reference
/// stands on one line, so that `grep` can pick a file's line and compare its digest (see
/// `VERIFY.txt`); XML does not care.
fn asic_manifest(entries: &[Entry]) -> Vec<u8> {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <asic:ASiCManifest xmlns:asic=\"http://uri.etsi.org/02918/v1.2.1#\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">\n\
         \x20 <asic:SigReference URI=\"META-INF/signature001.p7s\" MimeType=\"application/pkcs7-signature\"/>\n",
    );
    for e in entries {
        let digest = hex::decode(&e.sha256).unwrap_or_default();
        xml.push_str(&format!(
            "  <asic:DataObjectReference URI=\"{}\" MimeType=\"{}\">\
             <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\
             <ds:DigestValue>{}</ds:DigestValue>\
             </asic:DataObjectReference>\n",
            e.path,
            e.media_type,
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
    }
    xml.push_str("</asic:ASiCManifest>\n");
    xml.into_bytes()
}

/// Marks a command line in `VERIFY.txt`: what follows is typed as is, from the folder where
/// the bundle was unzipped, and must succeed (exit status 0). Nothing else starts with it.
pub const COMMAND_PROMPT: &str = "$ ";

/// How to check the bundle with `openssl`, `sha256sum` and `grep` only, explained in French
/// then English, with one command list shared by both (each command on its own line behind
/// [`COMMAND_PROMPT`], so that a test can run exactly what a judge would type).
///
/// The trust path the commands follow: the provider's seal over `META-INF/ASiCManifest.xml`
/// (step 1) → the digest of `SHA256SUMS` written in that sealed manifest (step 2) → the
/// digest of every other file in `SHA256SUMS` (step 3); then each record's own seal and
/// RFC 3161 timestamp (step 4), the chain of records (step 5) and the documents named by the
/// deposit record (step 6).
fn verify_text(
    letter_id: &str,
    provider: &crate::core::provider::ProviderIdentity,
    entries: &[Entry],
) -> String {
    format!(
        "Dossier de preuves / Proof bundle — lettre / letter {letter_id}\n\
         =====================================================================\n\n\
         Prestataire : {}\n{}\n\
         Provider: {}\n{}\n\n\
         {VERIFY_GUIDE}\
         COMMANDES / COMMANDS\n\
         =====================================================================\n\n\
         {}",
        provider.legal_line(true),
        provider.status(true),
        provider.legal_line(false),
        provider.status(false),
        verify_commands(entries)
    )
}

/// The French then English guide of `VERIFY.txt`, between its title and its commands.
const VERIFY_GUIDE: &str = "\
         FRANÇAIS\n\n\
         Ce dossier contient la lettre telle que déposée (documents/), chaque preuve (evidence/ :\n\
         l'enregistrement .json, son cachet électronique .p7s et son horodatage RFC 3161 .tsr),\n\
         les certificats racines du prestataire (certs/roots.pem), manifest.json et SHA256SUMS\n\
         (l'empreinte SHA-256 de chaque fichier). META-INF/ASiCManifest.xml liste chaque fichier\n\
         avec son empreinte ; il est scellé par le prestataire (META-INF/signature001.p7s).\n\n\
         Décompressez le dossier, placez-vous dans le répertoire obtenu et tapez les commandes de\n\
         la liste COMMANDES ci-dessous : chaque ligne qui commence par « $ » est une commande à\n\
         taper telle quelle (sans le « $ »). Chacune doit réussir ; OpenSSL 3 et les outils GNU\n\
         (sha256sum, grep, cut) suffisent.\n\n\
         1. Le sceau du prestataire couvre le manifeste ASiC (« CMS Verification successful »).\n\
         2. L'empreinte de SHA256SUMS est celle que ce manifeste scellé indique : SHA256SUMS est\n\
         \x20  donc bien la liste scellée par le prestataire.\n\
         3. Chaque fichier a l'empreinte que SHA256SUMS indique (« OK » pour chacun) : aucun\n\
         \x20  fichier n'a été modifié depuis le scellement.\n\
         4. Chaque preuve est horodatée (« Verification: OK ») et scellée (« CMS Verification\n\
         \x20  successful ») ; la ligne « Time stamp » donne l'heure prouvée, en UTC.\n\
         5. Chaque preuve contient l'empreinte SHA-256 de la précédente (champ\n\
         \x20  previous_evidence_sha256, null pour la première) : la chaîne ne peut être modifiée,\n\
         \x20  réordonnée ou amputée sans que cela se voie.\n\
         6. L'empreinte de chaque document figure dans la preuve de dépôt (content[].sha256).\n\
         7. Comparez l'empreinte de certs/roots.pem avec celle des certificats racines publiés\n\
         \x20  par le prestataire (/v1/trust/roots.pem sur son site), obtenus par un autre canal :\n\
         \x20  une vérification ancrée seulement dans ce dossier prouve son intégrité, pas son\n\
         \x20  origine.\n\
         8. Le journal de transparence : chaque preuve est une feuille d'un arbre de Merkle\n\
         \x20  (RFC 9162) tenu par le prestataire pour toutes ses lettres ; log/tree-head.json en\n\
         \x20  donne la racine, scellée et horodatée. Comparez-la à une tête d'arbre conservée par\n\
         \x20  un tiers (huissier, greffe) : `recommande log verify-consistency` prouve que le journal\n\
         \x20  n'a fait que croître. Les chemins d'inclusion (log/inclusion.json) se vérifient avec\n\
         \x20  `recommande verify` ou tout outil RFC 9162.\n\n\
         OpenSSL juge les certificats à la date du jour. Si un certificat a expiré depuis,\n\
         ajoutez à la commande « -attime » suivi de l'heure prouvée en secondes depuis 1970,\n\
         par exemple : -attime $(date -u -d 'Nov 23 09:13:44 2026 GMT' +%s)\n\
         L'outil `recommande verify` et la page /verify du prestataire font toutes ces\n\
         vérifications, et vérifient en plus l'ordre des événements et le délai de 15 jours.\n\n\
         ENGLISH\n\n\
         This bundle holds the letter as deposited (documents/), every piece of evidence\n\
         (evidence/: the .json record, its electronic seal .p7s and its RFC 3161 timestamp .tsr),\n\
         the provider's root certificates (certs/roots.pem), manifest.json and SHA256SUMS (the\n\
         SHA-256 of every file). META-INF/ASiCManifest.xml lists every file with its digest and\n\
         is sealed by the provider (META-INF/signature001.p7s).\n\n\
         Unzip the bundle, change into the folder it gives, and type the COMMANDS below: every\n\
         line starting with \"$ \" is a command to type as is (without the \"$ \"). Each must\n\
         succeed; OpenSSL 3 and the GNU tools (sha256sum, grep, cut) are all you need.\n\n\
         1. The provider's seal covers the ASiC manifest (\"CMS Verification successful\").\n\
         2. The digest of SHA256SUMS is the one written in that sealed manifest, so SHA256SUMS\n\
         \x20  is the list the provider sealed.\n\
         3. Every file has the digest SHA256SUMS gives (\"OK\" for each): nothing changed since\n\
         \x20  the bundle was sealed.\n\
         4. Every record is timestamped (\"Verification: OK\") and sealed (\"CMS Verification\n\
         \x20  successful\"); the \"Time stamp\" line is the proven time, in UTC.\n\
         5. Every record holds the SHA-256 of the one before it (previous_evidence_sha256, null\n\
         \x20  for the first), so the chain cannot be changed, reordered or cut unnoticed.\n\
         6. The digest of every document is in the deposit record (content[].sha256).\n\
         7. Compare the digest of certs/roots.pem with that of the root certificates the provider\n\
         \x20  publishes (/v1/trust/roots.pem on its site), obtained through another channel: trust\n\
         \x20  anchored only in this bundle proves its integrity, not its origin.\n\
         8. The transparency log: every record is a leaf of a Merkle tree (RFC 9162) the provider\n\
         \x20  keeps for all its letters; log/tree-head.json gives its root, sealed and timestamped.\n\
         \x20  Compare it with a tree head kept by a third party (bailiff, court clerk):\n\
         \x20  `recommande log verify-consistency` proves the log only grew. The inclusion paths\n\
         \x20  (log/inclusion.json) are checked by `recommande verify` or any RFC 9162 tool.\n\n\
         OpenSSL judges certificates as of today. Once a certificate has expired, add \"-attime\"\n\
         and the proven time in seconds since 1970 to the command, for example:\n\
         -attime $(date -u -d 'Nov 23 09:13:44 2026 GMT' +%s)\n\
         `recommande verify` and the provider's /verify page run all of these checks, and also\n\
         check the order of events and the 15-day window.\n\n";

/// Appends one command line, behind [`COMMAND_PROMPT`].
fn run(out: &mut String, command: String) {
    out.push_str(COMMAND_PROMPT);
    out.push_str(&command);
    out.push('\n');
}

/// The numbered command list of `VERIFY.txt`: the bundle's own seal and digests (steps 1 to
/// 3), every record (4 to 6), the roots (7), then the log (8) and renewals (9) when present.
fn verify_commands(entries: &[Entry]) -> String {
    let stems: Vec<&str> = entries
        .iter()
        .filter_map(|e| {
            e.path
                .strip_suffix(".json")
                .filter(|p| p.starts_with("evidence/"))
        })
        .collect();
    let mut c = String::new();
    manifest_commands(&mut c);
    record_commands(&mut c, entries, &stems);
    c.push_str("\n7. Empreinte des certificats racines / Fingerprint of the root certificates\n");
    run(&mut c, format!("sha256sum {ROOTS}"));
    if entries.iter().any(|e| e.path == LOG_TREE_HEAD) {
        log_commands(&mut c);
    }
    renewal_commands(&mut c, entries);
    c
}

/// Steps 1 to 3: the provider's seal over the ASiC manifest, `SHA256SUMS` named by it, and
/// every file's digest.
fn manifest_commands(c: &mut String) {
    c.push_str(
        "1. Sceau du prestataire sur le manifeste ASiC / The provider's seal over the ASiC manifest\n",
    );
    run(
        c,
        format!(
            "openssl cms -verify -binary -inform DER -in {ASIC_SIGNATURE} -content {ASIC_MANIFEST} -CAfile {ROOTS} -purpose any -out /dev/null"
        ),
    );
    c.push_str(
        "\n2. SHA256SUMS est celui que le manifeste scellé désigne / SHA256SUMS is the one the sealed manifest names\n",
    );
    run(
        c,
        format!(
            "grep -F 'URI=\"{CHECKSUMS}\"' {ASIC_MANIFEST} | grep -qF \"<ds:DigestValue>$(openssl dgst -sha256 -binary {CHECKSUMS} | openssl base64 -A)</ds:DigestValue>\" && echo '{CHECKSUMS}: OK'"
        ),
    );
    c.push_str("\n3. Empreinte de chaque fichier / Digest of every file\n");
    run(c, format!("sha256sum --strict -c {CHECKSUMS}"));
}

/// Steps 4 to 6: each record's timestamp and seal, the chain of records, and the documents
/// named by the deposit record (the first one).
fn record_commands(c: &mut String, entries: &[Entry], stems: &[&str]) {
    c.push_str(
        "\n4. Horodatage RFC 3161 et cachet de chaque preuve / RFC 3161 timestamp and seal of every record\n",
    );
    for stem in stems {
        run(
            c,
            format!(
                "openssl ts -verify -data {stem}.json -in {stem}.tsr -token_in -CAfile {ROOTS}"
            ),
        );
        run(
            c,
            format!(
                "openssl cms -verify -binary -inform DER -in {stem}.p7s -content {stem}.json -CAfile {ROOTS} -purpose any -out /dev/null"
            ),
        );
        run(
            c,
            format!("openssl ts -reply -in {stem}.tsr -token_in -text | grep 'Time stamp'"),
        );
    }
    c.push_str("\n5. Chaîne des preuves / Chain of records\n");
    let mut previous: Option<&str> = None;
    for stem in stems {
        match previous {
            None => run(
                c,
                format!(
                    "grep -qF '\"previous_evidence_sha256\":null' {stem}.json && echo '{stem}: OK'"
                ),
            ),
            Some(before) => run(
                c,
                format!(
                    "grep -qF \"\\\"previous_evidence_sha256\\\":\\\"$(sha256sum {before}.json | cut -d ' ' -f 1)\\\"\" {stem}.json && echo '{stem}: OK'"
                ),
            ),
        }
        previous = Some(stem);
    }
    c.push_str("\n6. Les documents sont ceux du dépôt / The documents are the deposited ones\n");
    if let Some(deposit) = stems.first() {
        let documents = entries
            .iter()
            .map(|e| e.path.as_str())
            .filter(|p| p.starts_with("documents/"));
        for document in documents {
            run(
                c,
                format!(
                    "grep -qF \"\\\"sha256\\\":\\\"$(sha256sum {document} | cut -d ' ' -f 1)\\\"\" {deposit}.json && echo '{document}: OK'"
                ),
            );
        }
    }
}

/// Step 8: the transparency log's sealed and timestamped tree head.
fn log_commands(c: &mut String) {
    c.push_str("\n8. Tête d'arbre du journal de transparence / Transparency log tree head\n");
    run(
        c,
        format!(
            "openssl cms -verify -binary -inform DER -in {LOG_TREE_HEAD_SEAL} -content {LOG_TREE_HEAD} -CAfile {ROOTS} -purpose any -out /dev/null"
        ),
    );
    run(
        c,
        format!(
            "openssl ts -verify -data {LOG_TREE_HEAD} -in {LOG_TREE_HEAD_TOKEN} -token_in -CAfile {ROOTS}"
        ),
    );
    run(
        c,
        format!("grep -o '\"root_hash\":\"[0-9a-f]*\"' {LOG_TREE_HEAD}"),
    );
    c.push_str(
        "   Cette tête se compare à une tête gardée plus tôt par un témoin (le journal n'a fait \
         que croître) / Compare it with a head a witness kept earlier (the log only grew):\n   \
         recommande log verify-consistency <tête-du-témoin.json> log/ --trust <racines.pem> \
         --server <adresse du prestataire>\n",
    );
}

/// Step 9, when the bundle holds renewals: each renewal's root and its timestamp.
fn renewal_commands(c: &mut String, entries: &[Entry]) {
    let renewals: Vec<(&str, String)> = entries
        .iter()
        .filter(|e| e.path.starts_with(RENEWALS_DIR))
        .filter_map(|e| {
            let stem = e.path.strip_suffix(".json")?;
            let Source::Bytes(bytes) = &e.source else {
                return None;
            };
            let record: crate::core::renewal::RenewalRecord = serde_json::from_slice(bytes).ok()?;
            // Only a hex digest goes into a shell command.
            let hex = record.root.len() == 64 && record.root.bytes().all(|b| b.is_ascii_hexdigit());
            hex.then_some((stem, record.root))
        })
        .collect();
    if renewals.is_empty() {
        return;
    }
    c.push_str(
        "\n9. Renouvellement des horodatages (RFC 4998) / Archive timestamp renewal (RFC 4998)\n\
         L'horodatage de chaque renouvellement porte sur la racine de son arbre (champ \"root\").\n\
         Each renewal token is a timestamp of its tree's root (the \"root\" field).\n",
    );
    for (stem, root) in &renewals {
        run(
            c,
            format!("grep -qF '\"root\":\"{root}\"' {stem}.json && echo '{stem}: OK'"),
        );
        run(
            c,
            format!("openssl ts -verify -digest {root} -in {stem}.tsr -token_in -CAfile {ROOTS}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::safe_name;

    #[test]
    fn names_are_safe_in_paths_xml_and_shells() {
        assert_eq!(
            safe_name("Relance n°1 (copie).pdf"),
            "Relance_n_1__copie_.pdf"
        );
        assert_eq!(safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name(""), "document");
    }
}
