//! The whole-image coefficient buffer of multi-scan (progressive) JPEGs, moved out of memory.
//!
//! libjpeg keeps every DCT coefficient of a multi-scan image in "virtual block arrays" that it
//! asks its memory manager for (`request_virt_barray`), realises once (`realize_virt_arrays`)
//! and then reads a band of block rows at a time (`access_virt_barray`). libjpeg-turbo's
//! manager keeps them in RAM: 2 bytes per coefficient, 576 MB for a 96 MP 4:4:4 photo. This
//! module replaces those three entries of the manager: each array becomes a scratch file in
//! `--temp-dir` (blocks reserved, unlinked, mapped shared), and the pages of block rows that
//! libjpeg has moved past are dropped from the resident set after every access. Each scan and
//! the output pass sweep the arrays top to bottom, so the resident part stays a few block rows
//! per component; the bytes live in the file and the page cache.
//!
//! The arrays are handed to libjpeg as opaque pointers to our [`VirtualArray`]s; libjpeg never
//! looks inside them (the type is opaque in its API too).

use crate::libjpeg::errors::{fail, Failure};
use mozjpeg_sys::{
    boolean, jpeg_common_struct, jvirt_barray_control, JBLOCK, JBLOCKARRAY, JBLOCKROW, JDIMENSION, JPOOL_IMAGE,
};
use std::os::raw::c_int;
use std::path::{Path, PathBuf};

/// Bytes of one block (64 coefficients of 2 bytes).
const BLOCK_BYTES: usize = std::mem::size_of::<JBLOCK>();

type Realize = unsafe extern "C-unwind" fn(&mut jpeg_common_struct);

/// One virtual block array: `rows` rows of `blocks_per_row` blocks in a scratch mapping.
struct VirtualArray {
    blocks_per_row: usize,
    rows: usize,
    map: Option<(memmap2::MmapMut, std::fs::File)>,
    /// Start of every block row in the mapping (what `access_virt_barray` returns a slice of).
    row_ptrs: Vec<JBLOCKROW>,
    /// Block rows that may be resident: `lo..hi`.
    lo: usize,
    hi: usize,
}

/// The arrays of one decoder, reachable from libjpeg's callbacks through `client_data`.
pub(crate) struct CoefficientStore {
    dir: PathBuf,
    // Boxed for stable addresses: libjpeg holds pointers to them while the Vec grows.
    #[allow(clippy::vec_box)]
    arrays: Vec<Box<VirtualArray>>,
    /// libjpeg's own `realize_virt_arrays`, still called for its own (sample) arrays.
    realize: Option<Realize>,
}

impl CoefficientStore {
    /// Installs the disk-backed arrays into the memory manager of `common` (before
    /// `jpeg_start_decompress`). The returned box must outlive every libjpeg call on `common`.
    pub(crate) fn install(common: &mut jpeg_common_struct, dir: &Path) -> Box<CoefficientStore> {
        let mut store = Box::new(CoefficientStore { dir: dir.to_path_buf(), arrays: Vec::new(), realize: None });
        // SAFETY: `common.mem` is the memory manager `jpeg_create_decompress` installed, alive
        // until `jpeg_destroy_decompress`; we replace three of its function pointers with ours,
        // which find the store through `client_data` (set here, to a box the caller keeps
        // alive for at least as long).
        unsafe {
            let mem = &mut *common.mem;
            store.realize = mem.realize_virt_arrays;
            mem.request_virt_barray = Some(request_virt_barray);
            mem.realize_virt_arrays = Some(realize_virt_arrays);
            mem.access_virt_barray = Some(access_virt_barray);
        }
        common.client_data = (&mut *store as *mut CoefficientStore).cast();
        store
    }
}

/// The store behind `client_data`.
///
/// # Safety
/// `common.client_data` must point to the live [`CoefficientStore`] installed for `common`.
unsafe fn store(common: &mut jpeg_common_struct) -> &mut CoefficientStore {
    // SAFETY: per the contract.
    unsafe { &mut *(common.client_data as *mut CoefficientStore) }
}

/// libjpeg's `request_virt_barray`, replaced: a new array backed by a scratch file.
///
/// # Safety
/// Called by libjpeg only, on a decompressor whose memory manager [`CoefficientStore::install`]
/// changed (so `client_data` is that live store).
unsafe extern "C-unwind" fn request_virt_barray(
    common: &mut jpeg_common_struct,
    pool_id: c_int,
    _pre_zero: boolean,
    blocksperrow: JDIMENSION,
    numrows: JDIMENSION,
    _maxaccess: JDIMENSION,
) -> *mut jvirt_barray_control {
    if pool_id != JPOOL_IMAGE {
        fail(Failure::Libjpeg(format!("coefficient array requested in pool {pool_id}")));
    }
    // SAFETY: installed by `CoefficientStore::install` on this decompressor.
    let store = unsafe { store(common) };
    // Scratch files start zero-filled, so `pre_zero` needs nothing more.
    let mut array = Box::new(VirtualArray {
        blocks_per_row: blocksperrow as usize,
        rows: numrows as usize,
        map: None,
        row_ptrs: Vec::new(),
        lo: 0,
        hi: 0,
    });
    let ptr: *mut VirtualArray = &mut *array;
    store.arrays.push(array);
    ptr.cast()
}

/// libjpeg's `realize_virt_arrays`, replaced: maps every requested array.
///
/// # Safety
/// As [`request_virt_barray`].
unsafe extern "C-unwind" fn realize_virt_arrays(common: &mut jpeg_common_struct) {
    let (realize, dir) = {
        // SAFETY: libjpeg calls this hook only on the decompressor `CoefficientStore::install`
        // installed it on, whose `client_data` is that store.
        let store = unsafe { store(common) };
        (store.realize, store.dir.clone())
    };
    if let Some(own) = realize {
        // SAFETY: libjpeg's own realiser, on the decompressor it belongs to.
        unsafe { own(common) };
    }
    // SAFETY: as above; libjpeg's realiser does not touch `client_data`.
    let store = unsafe { store(common) };
    for a in store.arrays.iter_mut().filter(|a| a.map.is_none()) {
        let len = (a.blocks_per_row as u64).saturating_mul(a.rows as u64).saturating_mul(BLOCK_BYTES as u64);
        let (mut map, file, _) =
            crate::store::scratch_mapping(&dir, len, "jpeg-coefficients", "the JPEG coefficient buffer")
                .unwrap_or_else(|e| fail(Failure::Io(e.to_string())));
        let base = map.as_mut_ptr().cast::<JBLOCK>();
        // SAFETY: row r starts r·blocks_per_row blocks into a mapping of rows·blocks_per_row
        // blocks (at least one byte when empty), so every pointer is in bounds or one past.
        a.row_ptrs = (0..a.rows).map(|r| unsafe { base.add(r * a.blocks_per_row) }).collect();
        a.map = Some((map, file));
    }
}

/// libjpeg's `access_virt_barray`, replaced: block rows `start_row..start_row + num_rows`,
/// releasing the pages of rows libjpeg has moved past.
///
/// # Safety
/// As [`request_virt_barray`]; `ptr` is a pointer [`request_virt_barray`] returned.
unsafe extern "C-unwind" fn access_virt_barray(
    _common: &mut jpeg_common_struct,
    ptr: *mut jvirt_barray_control,
    start_row: JDIMENSION,
    num_rows: JDIMENSION,
    _writable: boolean,
) -> JBLOCKARRAY {
    // SAFETY: libjpeg passes back a pointer `request_virt_barray` returned, which points to a
    // `VirtualArray` boxed inside the store, alive until the decoder is dropped.
    let a = unsafe { &mut *ptr.cast::<VirtualArray>() };
    let (start, end) = (start_row as usize, start_row as usize + num_rows as usize);
    let Some((map, _)) = &a.map else {
        fail(Failure::Libjpeg("coefficient array accessed before it was realised".into()))
    };
    if end > a.rows {
        fail(Failure::Libjpeg(format!("coefficient rows {start}..{end} of {}", a.rows)));
    }
    // Drop what libjpeg has moved past: rows above the window on a forward sweep, everything
    // of the previous sweep when it starts again from the top (a new scan).
    let row_bytes = a.blocks_per_row * BLOCK_BYTES;
    if start < a.lo {
        crate::store::release_bytes(map, a.lo * row_bytes, a.hi * row_bytes);
        a.hi = start;
    } else {
        crate::store::release_bytes(map, a.lo * row_bytes, start * row_bytes);
    }
    a.lo = start;
    a.hi = a.hi.max(end);
    // SAFETY: `start <= rows`, so this is within `row_ptrs` (or one past its end when empty).
    unsafe { a.row_ptrs.as_mut_ptr().add(start) }
}
