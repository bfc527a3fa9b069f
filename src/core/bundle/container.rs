//! The zip container of a proof bundle, read by hand so that the verifier sees exactly what
//! every other reader would see (issue 12 §1): the end-of-central-directory record, the
//! central directory, and a walk of the local file headers from offset 0, compared field by
//! field (PKWARE APPNOTE.TXT 6.3.x: §4.3.6 overall layout, §4.3.7 local file header, §4.3.9
//! data descriptor, §4.3.12 central directory header, §4.3.16 end of central directory).
//!
//! Reading an entry inflates it as a stream behind caps checked on every read, never after:
//! the entry's declared size, a cap per entry, a cap on everything inflated, a compression
//! ratio and a time budget (issue 12 §2). Zip64, multi-disk archives, encryption and methods
//! other than stored (0) and deflated (8) are refused: our bundles never use them.
//!
//! Pure apart from the reader it is given; the time budget is measured from [`Container::open`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The caps on the work one verification may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries in the central directory (and local headers walked).
    pub max_entries: usize,
    /// Most bytes one entry may inflate to.
    pub max_entry_size: u64,
    /// Most bytes all entries together may inflate to.
    pub max_total_size: u64,
    /// Most inflated bytes per compressed byte of a deflated entry, once past
    /// [`RATIO_FLOOR`]: JSON and text deflate by 3 to 10, a zip bomb by about 1,000.
    pub max_ratio: u64,
    /// Longest the verification may take, from [`Container::open`]; `None`: unbounded.
    pub time_budget: Option<Duration>,
}

/// Below this many inflated bytes an entry's ratio is not judged (a few kilobytes of zeros
/// deflate by a thousand and harm no one).
pub const RATIO_FLOOR: u64 = 1024 * 1024;

impl Default for Limits {
    /// Caps far above any real bundle (a letter's documents are at most a few hundred
    /// megabytes, its evidence a few dozen files), far below what would exhaust a verifier.
    fn default() -> Self {
        Limits {
            max_entries: 10_000,
            max_entry_size: 1024 * 1024 * 1024,
            max_total_size: 4 * 1024 * 1024 * 1024,
            max_ratio: 100,
            time_budget: None,
        }
    }
}

/// One entry as the central directory lists it, checked against its local header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralEntry {
    /// Its name (UTF-8; names that are not are refused).
    pub name: String,
    /// Compression method: 0 stored, 8 deflated.
    pub method: u16,
    /// CRC-32 of the inflated bytes.
    pub crc32: u32,
    /// Size as stored.
    pub compressed_size: u64,
    /// Size once inflated.
    pub size: u64,
    /// Offset of its local header.
    local_offset: u64,
    /// Offset of its data, after the local header (known once the walk reached it).
    data_offset: Option<u64>,
}

/// A container rule broken, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// The named check it fails.
    pub check: &'static str,
    /// What was found.
    pub detail: String,
}

/// No byte before the first local header, between entries, or after the end record.
pub const CHECK_EXTENT: &str = "container_extent";
/// Every local header agrees with its central-directory entry.
pub const CHECK_HEADERS: &str = "container_headers";
/// The local headers walked from offset 0 are exactly the listed entries, none overlapping.
pub const CHECK_LOCAL_ENTRIES: &str = "container_local_entries";
/// No duplicate names (case and separators folded), no absolute or `..` path.
pub const CHECK_NAMES: &str = "container_names";
/// Every entry belongs to the bundle layout of docs/EVIDENCE.md.
pub const CHECK_LAYOUT: &str = "container_layout";
/// The caps of [`Limits`] held while inflating.
pub const CHECK_LIMITS: &str = "container_limits";

/// A zip opened for verification.
pub struct Container<R> {
    source: R,
    entries: Vec<CentralEntry>,
    by_name: BTreeMap<String, usize>,
    limits: Limits,
    started: Instant,
    breaches: Vec<Breach>,
}

/// The input is not a zip we can read at all.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotAZip(pub String);

const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
const END_SIGNATURE: u32 = 0x0605_4b50;
const DESCRIPTOR_SIGNATURE: u32 = 0x0807_4b50;
/// APPNOTE §4.4.4 general purpose bit 3: sizes and CRC follow the data.
const FLAG_DESCRIPTOR: u16 = 1 << 3;
/// APPNOTE §4.4.4 bits 0 and 6: encrypted.
const FLAG_ENCRYPTED: u16 = 1 | (1 << 6);
/// Largest central directory we read (10,000 entries of 46 bytes and a 100-byte name is
/// about 1.5 MB).
const MAX_CENTRAL_DIRECTORY: u64 = 16 * 1024 * 1024;

impl<R: Read + Seek> Container<R> {
    /// Reads the end record and the central directory, walks the local headers and records
    /// every broken container rule (see [`Container::breaches`]). Fails only when the bytes
    /// are not a zip that can be read at all.
    pub fn open(mut source: R, limits: Limits) -> Result<Self, NotAZip> {
        let started = Instant::now();
        let mut breaches = Vec::new();
        let end = EndRecord::read(&mut source, &limits)?;
        let (prefix, cd_offset) = locate_directory(&mut source, &end, &mut breaches)?;
        let (mut entries, flags) =
            read_central_directory(&mut source, &end, prefix, cd_offset, &mut breaches)?;
        let by_name = check_names(&entries, &flags, &mut breaches);
        let walk = LocalWalk {
            prefix,
            cd_offset,
            max_entries: limits.max_entries,
            central_flags: &flags,
        };
        walk.run(&mut source, &mut entries, &mut breaches)?;
        Ok(Container {
            source,
            entries,
            by_name,
            limits,
            started,
            breaches,
        })
    }

    /// The entries, in central-directory order.
    pub fn entries(&self) -> &[CentralEntry] {
        &self.entries
    }

    /// The container rules broken so far, including caps reached while reading.
    pub fn breaches(&self) -> &[Breach] {
        &self.breaches
    }

    /// Inflates every entry once, behind the caps, checking each CRC-32 and size, and
    /// returns each name's hex SHA-256. A cap reached is recorded as a [`CHECK_LIMITS`]
    /// breach and stops the pass: no more work is done on such a bundle.
    pub fn digest_all(&mut self) -> BTreeMap<String, Result<String, String>> {
        let mut out = BTreeMap::new();
        let mut total = 0u64;
        for index in 0..self.entries.len() {
            let name = self.entries[index].name.clone();
            let mut hasher = Sha256::new();
            let result = self
                .copy_entry(index, &mut hasher, &mut total)
                .map(|_| hex::encode(hasher.finalize()));
            if let Err(ReadFailure::Limit(detail)) = &result {
                self.breaches.push(Breach {
                    check: CHECK_LIMITS,
                    detail: format!("{name:?}: {detail}"),
                });
                return out;
            }
            out.insert(name, result.map_err(|e| e.to_string()));
        }
        out
    }

    /// The bytes of entry `name`, at most `max` once inflated.
    pub fn read(&mut self, name: &str, max: u64) -> Result<Vec<u8>, String> {
        let index = *self
            .by_name
            .get(name)
            .ok_or_else(|| format!("{name} is missing"))?;
        let size = self.entries[index].size;
        if size > max {
            return Err(format!("{name} is larger than {max} bytes"));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        let mut total = 0u64;
        self.copy_entry(index, &mut bytes, &mut total)
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(bytes)
    }

    fn copy_entry(
        &mut self,
        index: usize,
        out: &mut impl std::io::Write,
        total: &mut u64,
    ) -> Result<u64, ReadFailure> {
        let entry = self.entries[index].clone();
        let data_offset = entry.data_offset.ok_or_else(|| {
            ReadFailure::Damaged("its local header is not where the directory says".into())
        })?;
        self.source
            .seek(SeekFrom::Start(data_offset))
            .map_err(|e| ReadFailure::Damaged(e.to_string()))?;
        let raw = (&mut self.source).take(entry.compressed_size);
        let mut inflated: Box<dyn Read + '_> = match entry.method {
            0 => Box::new(raw),
            8 => Box::new(flate2::read::DeflateDecoder::new(raw)),
            m => return Err(ReadFailure::Damaged(format!("compression method {m}"))),
        };
        let mut crc = crc32fast::Hasher::new();
        let mut count = 0u64;
        let mut buffer = vec![0u8; 64 * 1024];
        let limits = self.limits;
        loop {
            if limits
                .time_budget
                .is_some_and(|budget| self.started.elapsed() > budget)
            {
                return Err(ReadFailure::Limit(format!(
                    "the verification took longer than its budget of {} s",
                    limits.time_budget.map(|b| b.as_secs()).unwrap_or(0)
                )));
            }
            let n = inflated
                .read(&mut buffer)
                .map_err(|e| ReadFailure::Damaged(format!("cannot inflate: {e}")))?;
            if n == 0 {
                break;
            }
            count += n as u64;
            *total += n as u64;
            // The caps, on every read: never inflate past them.
            if count > entry.size {
                return Err(ReadFailure::Limit(format!(
                    "inflates beyond its declared size of {} bytes",
                    entry.size
                )));
            }
            if count > limits.max_entry_size {
                return Err(ReadFailure::Limit(format!(
                    "inflates beyond the {} bytes one entry may hold",
                    limits.max_entry_size
                )));
            }
            if *total > limits.max_total_size {
                return Err(ReadFailure::Limit(format!(
                    "the bundle inflates beyond the {} bytes allowed in all",
                    limits.max_total_size
                )));
            }
            if entry.method == 8
                && count > RATIO_FLOOR
                && count / entry.compressed_size.max(1) > limits.max_ratio
            {
                return Err(ReadFailure::Limit(format!(
                    "inflates more than {} times its compressed size (zip bomb)",
                    limits.max_ratio
                )));
            }
            crc.update(&buffer[..n]);
            out.write_all(&buffer[..n])
                .map_err(|e| ReadFailure::Damaged(e.to_string()))?;
        }
        if count != entry.size {
            return Err(ReadFailure::Damaged(format!(
                "{count} bytes, the directory says {}",
                entry.size
            )));
        }
        if crc.finalize() != entry.crc32 {
            return Err(ReadFailure::Damaged(
                "its CRC-32 is not the one the directory gives".into(),
            ));
        }
        Ok(count)
    }
}

/// Why an entry could not be read.
#[derive(Debug, thiserror::Error)]
enum ReadFailure {
    /// A cap of [`Limits`].
    #[error("{0}")]
    Limit(String),
    /// Damaged or inconsistent data.
    #[error("{0}")]
    Damaged(String),
}
/// A zip that cannot be read at all, from an I/O error.
fn io(e: std::io::Error) -> NotAZip {
    NotAZip(format!("cannot read the zip: {e}"))
}

/// Records one broken rule.
fn breach(breaches: &mut Vec<Breach>, check: &'static str, detail: String) {
    breaches.push(Breach { check, detail });
}

/// §4.3.16: the end-of-central-directory record, found backwards from the end.
struct EndRecord {
    /// Length of the whole input.
    len: u64,
    /// Where the record starts.
    offset: u64,
    /// Entries it announces.
    total: u16,
    /// Size of the central directory.
    cd_size: u64,
    /// Offset of the central directory, as written.
    cd_offset: u64,
    /// Length of the comment after it.
    comment: u64,
}

impl EndRecord {
    /// Finds and reads the end record; refuses multi-disk, zip64 and oversized directories.
    fn read(source: &mut (impl Read + Seek), limits: &Limits) -> Result<Self, NotAZip> {
        let len = source.seek(SeekFrom::End(0)).map_err(io)?;
        // §4.3.16: the end record is 22 bytes and a comment of at most 65,535.
        let tail_len = len.min(22 + 65_535);
        if tail_len < 22 {
            return Err(NotAZip("too short to be a zip".into()));
        }
        source.seek(SeekFrom::Start(len - tail_len)).map_err(io)?;
        let mut tail = vec![0u8; tail_len as usize];
        source.read_exact(&mut tail).map_err(io)?;
        let end_at = (0..=tail.len() - 22)
            .rev()
            .find(|&i| le32(&tail, i) == END_SIGNATURE)
            .ok_or_else(|| NotAZip("no end-of-central-directory record".into()))?;
        let end = &tail[end_at..];
        let record = EndRecord {
            len,
            offset: len - tail_len + end_at as u64,
            total: le16(end, 10),
            cd_size: u64::from(le32(end, 12)),
            cd_offset: u64::from(le32(end, 16)),
            comment: u64::from(le16(end, 20)),
        };
        let (disk, cd_disk, here) = (le16(end, 4), le16(end, 6), le16(end, 8));
        if disk != 0 || cd_disk != 0 || here != record.total {
            return Err(NotAZip("multi-disk zip archives are not bundles".into()));
        }
        if record.total == 0xFFFF
            || record.cd_size == 0xFFFF_FFFF
            || record.cd_offset == 0xFFFF_FFFF
        {
            return Err(NotAZip("zip64 archives are not bundles".into()));
        }
        if usize::from(record.total) > limits.max_entries {
            return Err(NotAZip(format!(
                "{} entries: more than the {} a bundle may hold",
                record.total, limits.max_entries
            )));
        }
        if record.cd_size > MAX_CENTRAL_DIRECTORY
            || record.cd_offset.saturating_add(record.cd_size) > record.offset
        {
            return Err(NotAZip(
                "the central directory does not fit before its end record".into(),
            ));
        }
        Ok(record)
    }
}

/// Where the central directory really is: the bytes put before a zip (a self-extracting
/// stub, a polyglot file) and those around the end record are breaches of
/// [`CHECK_EXTENT`]. Returns the prefix length and the directory's true offset.
fn locate_directory(
    source: &mut (impl Read + Seek),
    end: &EndRecord,
    breaches: &mut Vec<Breach>,
) -> Result<(u64, u64), NotAZip> {
    let end_of_end = end.offset + 22 + end.comment;
    if end_of_end != end.len {
        breach(
            breaches,
            CHECK_EXTENT,
            format!(
                "{} bytes after the end-of-central-directory record",
                end.len.abs_diff(end_of_end)
            ),
        );
    }
    // A prefix shifts everything: the directory then sits right before its end record, not
    // where the record says.
    let mut signature_at = |at: u64| -> Result<u32, NotAZip> {
        let mut word = [0u8; 4];
        source.seek(SeekFrom::Start(at)).map_err(io)?;
        Ok(match source.read_exact(&mut word) {
            Ok(()) => u32::from_le_bytes(word),
            Err(_) => 0,
        })
    };
    let (cd_size, end_offset) = (end.cd_size, end.offset);
    let mut prefix = 0u64;
    if cd_size > 0
        && end.cd_offset + cd_size < end_offset
        && signature_at(end.cd_offset)? != CENTRAL_SIGNATURE
        && signature_at(end_offset - cd_size)? == CENTRAL_SIGNATURE
    {
        prefix = end_offset - cd_size - end.cd_offset;
        breach(
            breaches,
            CHECK_EXTENT,
            format!("{prefix} bytes before the first local file header"),
        );
    }
    let cd_offset = end.cd_offset + prefix;
    if cd_offset + cd_size != end_offset {
        breach(
            breaches,
            CHECK_EXTENT,
            format!(
                "{} bytes between the central directory and its end record",
                end_offset - (cd_offset + cd_size)
            ),
        );
    }
    Ok((prefix, cd_offset))
}

/// §4.3.12: the central directory's entries and, beside them, their general purpose flags.
fn read_central_directory(
    source: &mut (impl Read + Seek),
    end: &EndRecord,
    prefix: u64,
    cd_offset: u64,
    breaches: &mut Vec<Breach>,
) -> Result<(Vec<CentralEntry>, Vec<u16>), NotAZip> {
    let total = end.total;
    source.seek(SeekFrom::Start(cd_offset)).map_err(io)?;
    let mut cd = vec![0u8; end.cd_size as usize];
    source.read_exact(&mut cd).map_err(io)?;
    let mut entries = Vec::with_capacity(usize::from(total));
    let mut central_flags = Vec::with_capacity(usize::from(total));
    let mut at = 0usize;
    for i in 0..total {
        if at + 46 > cd.len() || le32(&cd, at) != CENTRAL_SIGNATURE {
            return Err(NotAZip(format!(
                "central directory entry {i} is unreadable"
            )));
        }
        let h = &cd[at..];
        let (name_len, extra_len, comment_len) = (
            usize::from(le16(h, 28)),
            usize::from(le16(h, 30)),
            usize::from(le16(h, 32)),
        );
        let name_end = 46 + name_len;
        if at + name_end + extra_len + comment_len > cd.len() {
            return Err(NotAZip(format!("central directory entry {i} is truncated")));
        }
        let name = String::from_utf8(h[46..name_end].to_vec())
            .map_err(|_| NotAZip(format!("central directory entry {i}: name not UTF-8")))?;
        let entry = CentralEntry {
            name,
            method: le16(h, 10),
            crc32: le32(h, 16),
            compressed_size: u64::from(le32(h, 20)),
            size: u64::from(le32(h, 24)),
            local_offset: u64::from(le32(h, 42)) + prefix,
            data_offset: None,
        };
        if entry.compressed_size == 0xFFFF_FFFF
            || entry.size == 0xFFFF_FFFF
            || le32(h, 42) == 0xFFFF_FFFF
        {
            return Err(NotAZip("zip64 entries are not bundle entries".into()));
        }
        central_flags.push(le16(h, 8));
        entries.push(entry);
        at += name_end + extra_len + comment_len;
    }
    if at != cd.len() {
        breach(
            breaches,
            CHECK_EXTENT,
            format!(
                "{} bytes in the central directory after its {total} entries",
                cd.len() - at
            ),
        );
    }
    Ok((entries, central_flags))
}

/// Names, layout and methods of the listed entries: one meaning per name on every file
/// system, every entry part of the bundle layout, stored or deflated and not encrypted.
/// Returns the index of each name (the first, when a name repeats).
fn check_names(
    entries: &[CentralEntry],
    central_flags: &[u16],
    breaches: &mut Vec<Breach>,
) -> BTreeMap<String, usize> {
    let mut by_name = BTreeMap::new();
    let mut folded = BTreeSet::new();
    for (i, entry) in entries.iter().enumerate() {
        if let Some(problem) = unsafe_path(&entry.name) {
            breach(
                breaches,
                CHECK_NAMES,
                format!("{:?}: {problem}", entry.name),
            );
        }
        let key = entry.name.replace('\\', "/").to_lowercase();
        if !folded.insert(key) {
            breach(
                breaches,
                CHECK_NAMES,
                format!(
                    "{:?} appears twice (names compared without case, \\ read as /)",
                    entry.name
                ),
            );
        }
        by_name.entry(entry.name.clone()).or_insert(i);
        if !super::verify::in_layout(&entry.name) {
            breach(
                breaches,
                CHECK_LAYOUT,
                format!("{:?} is not part of the bundle layout", entry.name),
            );
        }
        if central_flags[i] & FLAG_ENCRYPTED != 0 {
            breach(
                breaches,
                CHECK_HEADERS,
                format!("{:?} is encrypted", entry.name),
            );
        }
        if entry.method != 0 && entry.method != 8 {
            breach(
                breaches,
                CHECK_HEADERS,
                format!(
                    "{:?} uses compression method {}, neither stored nor deflated",
                    entry.name, entry.method
                ),
            );
        }
        if entry.method == 0 && entry.compressed_size != entry.size {
            breach(
                breaches,
                CHECK_HEADERS,
                format!("{:?} is stored but its two sizes differ", entry.name),
            );
        }
    }
    by_name
}

/// §4.3.6: the walk of the local headers from the first one up to the central directory;
/// each must be the one a central entry points at, in full agreement with it.
struct LocalWalk<'a> {
    prefix: u64,
    cd_offset: u64,
    max_entries: usize,
    central_flags: &'a [u16],
}

/// The fixed fields of a local file header (§4.3.7) and its name.
struct LocalHeader {
    name: Vec<u8>,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    data_offset: u64,
}

impl LocalWalk<'_> {
    /// Walks every local header, setting each reached entry's data offset.
    fn run(
        &self,
        source: &mut (impl Read + Seek),
        entries: &mut [CentralEntry],
        breaches: &mut Vec<Breach>,
    ) -> Result<(), NotAZip> {
        let mut by_offset: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            by_offset.entry(e.local_offset).or_default().push(i);
        }
        for (offset, listed) in &by_offset {
            if listed.len() > 1 {
                breach(
                    breaches,
                    CHECK_LOCAL_ENTRIES,
                    format!(
                        "{} central entries share the local header at offset {offset} (overlapping entries)",
                        listed.len()
                    ),
                );
            }
        }
        let mut offset = self.prefix;
        let mut walked = 0usize;
        let mut reached = BTreeSet::new();
        while offset < self.cd_offset {
            if walked >= self.max_entries {
                breach(
                    breaches,
                    CHECK_LOCAL_ENTRIES,
                    format!("more than {} local headers", self.max_entries),
                );
                break;
            }
            walked += 1;
            let Some(local) = self.header_at(source, offset, breaches)? else {
                break;
            };
            let Some(&index) = by_offset.get(&offset).and_then(|l| l.first()) else {
                let local_name = String::from_utf8_lossy(&local.name);
                breach(
                    breaches,
                    CHECK_LOCAL_ENTRIES,
                    format!(
                        "the local entry {local_name:?} at offset {offset} is not in the central directory"
                    ),
                );
                if local.flags & FLAG_DESCRIPTOR != 0 {
                    // Its size is unknown without the central directory: the walk ends here.
                    break;
                }
                offset = local.data_offset + local.compressed;
                continue;
            };
            reached.insert(offset);
            let end = self.compare(source, &local, index, entries, breaches)?;
            if end > self.cd_offset {
                breach(
                    breaches,
                    CHECK_LOCAL_ENTRIES,
                    format!("{:?} runs into the central directory", entries[index].name),
                );
                break;
            }
            entries[index].data_offset = Some(local.data_offset);
            offset = end;
        }
        for e in entries.iter() {
            if !reached.contains(&e.local_offset) {
                breach(
                    breaches,
                    CHECK_LOCAL_ENTRIES,
                    format!(
                        "{:?} points at offset {}, inside another entry or past the entries (overlapping or hidden entry)",
                        e.name, e.local_offset
                    ),
                );
            }
        }
        Ok(())
    }

    /// The local header at `offset`, or `None` (with its breach) where there is none or it
    /// runs into the central directory.
    fn header_at(
        &self,
        source: &mut (impl Read + Seek),
        offset: u64,
        breaches: &mut Vec<Breach>,
    ) -> Result<Option<LocalHeader>, NotAZip> {
        let cd_offset = self.cd_offset;
        let mut fixed = [0u8; 30];
        source.seek(SeekFrom::Start(offset)).map_err(io)?;
        if offset + 30 > cd_offset
            || source.read_exact(&mut fixed).is_err()
            || le32(&fixed, 0) != LOCAL_SIGNATURE
        {
            breach(
                breaches,
                CHECK_EXTENT,
                if offset == 0 {
                    "bytes before the first local file header".to_string()
                } else {
                    format!(
                        "{} bytes at offset {offset} that are no local file header",
                        cd_offset - offset
                    )
                },
            );
            return Ok(None);
        }
        let name_len = u64::from(le16(&fixed, 26));
        let extra_len = u64::from(le16(&fixed, 28));
        let data_offset = offset + 30 + name_len + extra_len;
        if data_offset > cd_offset {
            breach(
                breaches,
                CHECK_LOCAL_ENTRIES,
                format!("the local header at offset {offset} runs into the central directory"),
            );
            return Ok(None);
        }
        let mut name = vec![0u8; name_len as usize];
        source.read_exact(&mut name).map_err(io)?;
        Ok(Some(LocalHeader {
            name,
            flags: le16(&fixed, 6),
            method: le16(&fixed, 8),
            crc: le32(&fixed, 14),
            compressed: u64::from(le32(&fixed, 18)),
            size: u64::from(le32(&fixed, 22)),
            data_offset,
        }))
    }

    /// Compares a local header (and its data descriptor) with central entry `index`;
    /// returns the offset just past the entry.
    fn compare(
        &self,
        source: &mut (impl Read + Seek),
        local: &LocalHeader,
        index: usize,
        entries: &[CentralEntry],
        breaches: &mut Vec<Breach>,
    ) -> Result<u64, NotAZip> {
        let central = &entries[index];
        let central_flags = self.central_flags[index];
        let mut differ = Vec::new();
        if local.name != central.name.as_bytes() {
            let local_name = String::from_utf8_lossy(&local.name);
            differ.push(format!("name {local_name:?}"));
        }
        if local.flags != central_flags {
            differ.push(format!(
                "flags {:#06x} (central {central_flags:#06x})",
                local.flags
            ));
        }
        if local.method != central.method {
            differ.push(format!(
                "method {} (central {})",
                local.method, central.method
            ));
        }
        let mut end = local.data_offset + central.compressed_size;
        let fields = (local.crc, local.compressed, local.size);
        if local.flags & FLAG_DESCRIPTOR == 0 {
            if fields != (central.crc32, central.compressed_size, central.size) {
                differ.push("CRC-32 or sizes".to_string());
            }
        } else {
            // §4.3.9: a data descriptor follows the data, its signature optional; the local
            // fields are zero.
            if fields != (0, 0, 0) {
                differ.push("CRC-32 or sizes beside a data descriptor".to_string());
            }
            let mut descriptor = [0u8; 16];
            source.seek(SeekFrom::Start(end)).map_err(io)?;
            let read = read_up_to(source, &mut descriptor).map_err(io)?;
            let found = if read >= 16 && le32(&descriptor, 0) == DESCRIPTOR_SIGNATURE {
                end += 16;
                Some((
                    le32(&descriptor, 4),
                    le32(&descriptor, 8),
                    le32(&descriptor, 12),
                ))
            } else if read >= 12 {
                end += 12;
                Some((
                    le32(&descriptor, 0),
                    le32(&descriptor, 4),
                    le32(&descriptor, 8),
                ))
            } else {
                None
            };
            let want = (
                central.crc32,
                central.compressed_size as u32,
                central.size as u32,
            );
            if found != Some(want) {
                differ.push("its data descriptor".to_string());
            }
        }
        if !differ.is_empty() {
            breach(
                breaches,
                CHECK_HEADERS,
                format!(
                    "the local header of {:?} disagrees with the central directory: {}",
                    central.name,
                    differ.join(", ")
                ),
            );
        }
        Ok(end)
    }
}

/// Why a path is not a plain relative path, if it is not.
fn unsafe_path(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty name");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Some("absolute path");
    }
    if name.as_bytes().get(1) == Some(&b':') {
        return Some("drive letter");
    }
    if name.contains('\\') {
        return Some("backslash separator");
    }
    if name.chars().any(char::is_control) {
        return Some("control character");
    }
    if name.split('/').any(|part| part == "..") {
        return Some("`..` component");
    }
    None
}

fn read_up_to(source: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let n = source.read(&mut buffer[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

// Callers index only within lengths they checked (fixed-size header arrays, slices checked
// against the header size), so these never go out of bounds.
fn le16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}
