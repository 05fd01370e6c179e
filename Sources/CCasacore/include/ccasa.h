/*
 * ccasa.h — a plain C interface to the parts of casacore selfcal uses.
 *
 * Every function catches every C++ exception. Functions that can fail return
 * 0 on success and -1 on failure, writing a message into `err` (always NUL
 * terminated, truncated to `errlen`). Functions returning a pointer return
 * NULL on failure.
 *
 * Array cells are transferred in casacore's (Fortran) order: for a DATA cell
 * of shape [npol, nchan] the polarisation index varies fastest. A range of
 * `n` rows starting at `start` is laid out row after row. Complex values are
 * interleaved (re, im) floats; booleans are one byte each (0 or 1).
 */
#ifndef CCASA_H
#define CCASA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ccasa_table ccasa_table;

/* --- Tables ------------------------------------------------------------ */

/** Opens a table (an MS or any casacore table). writable=1 opens for update
 *  with casacore's automatic locking. */
ccasa_table *ccasa_open(const char *path, int writable, char *err, size_t errlen);
/** Opens the subtable named by a table keyword (e.g. "ANTENNA"). */
ccasa_table *ccasa_open_subtable(ccasa_table *t, const char *name, int writable, char *err, size_t errlen);
/** Flushes and closes; always frees the handle. */
int ccasa_close(ccasa_table *t, char *err, size_t errlen);
int ccasa_flush(ccasa_table *t, char *err, size_t errlen);
/** Flushes (if writable) and releases every lock, so other processes (WSClean) can open the
 *  table; casacore's automatic locking takes the lock again on the next access. */
int ccasa_release(ccasa_table *t, char *err, size_t errlen);
int64_t ccasa_nrows(ccasa_table *t);
int ccasa_is_writable(ccasa_table *t);
/** Column names separated by '\n'. Returns the length needed (excluding NUL). */
int64_t ccasa_column_names(ccasa_table *t, char *buf, size_t buflen);
int ccasa_has_column(ccasa_table *t, const char *col);
/** Shape of one array cell: ndim and up to 8 axis lengths. ndim=0 for scalar columns. */
int ccasa_cell_shape(ccasa_table *t, const char *col, int64_t row, int *ndim, int64_t *shape, char *err, size_t errlen);
/** A string-valued keyword of a column, by dotted path (e.g. "MEASINFO.Ref"). */
int ccasa_column_keyword_string(ccasa_table *t, const char *col, const char *path, char *buf, size_t buflen, char *err, size_t errlen);
int ccasa_add_rows(ccasa_table *t, int64_t n, char *err, size_t errlen);

/* --- Scalar columns, row ranges -------------------------------------- */
int ccasa_get_int_range(ccasa_table *t, const char *col, int64_t start, int64_t n, int32_t *out, char *err, size_t errlen);
int ccasa_put_int_range(ccasa_table *t, const char *col, int64_t start, int64_t n, const int32_t *in, char *err, size_t errlen);
int ccasa_get_double_range(ccasa_table *t, const char *col, int64_t start, int64_t n, double *out, char *err, size_t errlen);
int ccasa_put_double_range(ccasa_table *t, const char *col, int64_t start, int64_t n, const double *in, char *err, size_t errlen);
int ccasa_get_bool_range(ccasa_table *t, const char *col, int64_t start, int64_t n, uint8_t *out, char *err, size_t errlen);
int ccasa_put_bool_range(ccasa_table *t, const char *col, int64_t start, int64_t n, const uint8_t *in, char *err, size_t errlen);
/* Cache size, in buckets, of the StandardStMan holding `col`: sets it to `nbuckets` and stores the
 * previous size in *previous. Columns in other storage managers are left alone (*previous = -1).
 * A cache that holds the buckets of a block of rows lets several scalar columns of that block be
 * read with one file read per bucket instead of one per bucket and column. */
int ccasa_set_ssm_cache(ccasa_table *t, const char *col, int64_t nbuckets, int64_t *previous, char *err, size_t errlen);
int ccasa_get_string_cell(ccasa_table *t, const char *col, int64_t row, char *buf, size_t buflen, char *err, size_t errlen);

/* --- Array columns, row ranges (every cell in the range has `cellsize` elements) */
int ccasa_get_complex_range(ccasa_table *t, const char *col, int64_t start, int64_t n, int64_t cellsize, float *out, char *err, size_t errlen);
int ccasa_put_complex_range(ccasa_table *t, const char *col, int64_t start, int64_t n, int64_t cellsize, const float *in, char *err, size_t errlen);
int ccasa_get_float_range(ccasa_table *t, const char *col, int64_t start, int64_t n, int64_t cellsize, float *out, char *err, size_t errlen);
int ccasa_put_float_range(ccasa_table *t, const char *col, int64_t start, int64_t n, int64_t cellsize, const float *in, char *err, size_t errlen);
int ccasa_get_bool_array_range(ccasa_table *t, const char *col, int64_t start, int64_t n, int64_t cellsize, uint8_t *out, char *err, size_t errlen);
int ccasa_put_bool_array_range(ccasa_table *t, const char *col, int64_t start, int64_t n, int64_t cellsize, const uint8_t *in, char *err, size_t errlen);
int ccasa_get_double_array_range(ccasa_table *t, const char *col, int64_t start, int64_t n, int64_t cellsize, double *out, char *err, size_t errlen);
int ccasa_put_double_array_range(ccasa_table *t, const char *col, int64_t start, int64_t n, int64_t cellsize, const double *in, char *err, size_t errlen);
/** Reads every cell of an int array column into out (cells may differ in shape only
 *  if cellsize is the maximum; shorter cells are padded with -1). */
int ccasa_get_int_array_cell(ccasa_table *t, const char *col, int64_t row, int64_t cellsize, int32_t *out, char *err, size_t errlen);
int ccasa_get_double_array_cell(ccasa_table *t, const char *col, int64_t row, int64_t cellsize, double *out, char *err, size_t errlen);

/** Adds a complex data column (MODEL_DATA, CORRECTED_DATA) like CASA does: tiled
 *  storage with the shape of `like_col` (normally DATA). No-op if it exists. */
int ccasa_add_data_column(ccasa_table *t, const char *col, const char *like_col, char *err, size_t errlen);

/** Removes a column (used to rebuild MODEL_DATA/CORRECTED_DATA after a crash). No-op if absent. */
int ccasa_remove_column(ccasa_table *t, const char *col, char *err, size_t errlen);

/* --- Creating a Measurement Set ---------------------------------------- */
typedef struct {
    int32_t nant;
    const char *antenna_names;      /* '\n'-separated */
    const double *positions;        /* ITRF x,y,z per antenna, metres */
    double dish_diameter;           /* metres */
    int32_t nspw;
    int32_t nchan;                  /* channels per SPW */
    const double *chan_freqs;       /* nspw*nchan, Hz */
    double chan_width;              /* Hz */
    int32_t npol;
    const int32_t *corr_types;      /* Stokes enum values (9=XX,12=YY,5=RR,8=LL) */
    double phase_ra, phase_dec;     /* radians */
    const char *direction_frame;    /* "J2000" or "B1950" */
    const char *field_name;
    const char *telescope_name;
    int64_t nrows;
    double time_start, time_end;    /* MJD seconds UTC, for OBSERVATION */
} ccasa_ms_spec;

/** Creates a new MS with fixed-shape tiled DATA/FLAG, J2000 UVW and filled
 *  subtables; the main table has `nrows` rows to be filled by the caller. */
ccasa_table *ccasa_ms_create(const char *path, const ccasa_ms_spec *spec, char *err, size_t errlen);

/* --- Measures ---------------------------------------------------------- */

/** Per-antenna UVW (metres) in J2000 towards (ra, dec) given in `frame`, for each
 *  time (MJD s UTC): out[(t*nant + a)*3 + k]. Relative to the array centroid; a
 *  baseline p-q has uvw = out[q] - out[p]. */
int ccasa_antenna_uvw(const double *itrf, int32_t nant, const double *times, int32_t ntimes,
                      double ra, double dec, const char *frame, double *out, char *err, size_t errlen);
/** Converts a direction between frames (J2000, B1950, ...) at an epoch (MJD s UTC). */
int ccasa_convert_direction(double ra, double dec, const char *from, const char *to, double epoch,
                            double *ra_out, double *dec_out, char *err, size_t errlen);

/* --- CASA calibration tables ------------------------------------------- */
typedef struct {
    int64_t nrows;
    int32_t npol;
    int32_t nchan;
    const double *time, *interval;
    const int32_t *field_id, *spw_id, *antenna1, *antenna2, *scan, *obs_id;
    const float *cparam;     /* nrows*npol*nchan complex, interleaved */
    const float *paramerr;   /* nrows*npol*nchan */
    const uint8_t *flag;     /* nrows*npol*nchan */
    const float *snr;        /* nrows*npol*nchan */
    const char *ms_name;
    const char *vis_cal;     /* "G Jones" */
} ccasa_caltable_spec;

/** Writes a CASA "G Jones" calibration table at `path`, copying the MS's
 *  ANTENNA, FIELD, SPECTRAL_WINDOW, OBSERVATION subtables (HISTORY empty). */
int ccasa_caltable_write(const char *path, const char *ms_path, const ccasa_caltable_spec *spec, char *err, size_t errlen);

/** Silences casacore's logging sink (measures warnings) unless verbose. */
void ccasa_quiet_logging(int quiet);

#ifdef __cplusplus
}
#endif
#endif
