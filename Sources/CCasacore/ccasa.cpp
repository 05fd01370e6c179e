// ccasa.cpp — the casacore side of ccasa.h. Every entry point catches every
// exception and turns it into an error string that names the table and column.

#include "ccasa.h"

#include <casacore/casa/Arrays/Array.h>
#include <casacore/casa/Arrays/Vector.h>
#include <casacore/casa/Arrays/Matrix.h>
#include <casacore/casa/Logging/LogSink.h>
#include <casacore/casa/Logging/NullLogSink.h>
#include <casacore/casa/Quanta/MVTime.h>
#include <casacore/casa/OS/Path.h>
#include <casacore/tables/Tables/Table.h>
#include <casacore/tables/Tables/TableDesc.h>
#include <casacore/tables/Tables/SetupNewTab.h>
#include <casacore/tables/Tables/ScalarColumn.h>
#include <casacore/tables/Tables/ArrayColumn.h>
#include <casacore/tables/Tables/ScaColDesc.h>
#include <casacore/tables/Tables/ArrColDesc.h>
#include <casacore/tables/Tables/TableRecord.h>
#include <casacore/tables/Tables/TableInfo.h>
#include <casacore/tables/Tables/TableAttr.h>
#include <casacore/tables/DataMan/TiledShapeStMan.h>
#include <casacore/tables/DataMan/TiledColumnStMan.h>
#include <casacore/tables/DataMan/StandardStMan.h>
#include <casacore/tables/DataMan/StandardStManAccessor.h>
#include <casacore/measures/Measures/MEpoch.h>
#include <casacore/measures/Measures/MPosition.h>
#include <casacore/measures/Measures/MDirection.h>
#include <casacore/measures/Measures/MBaseline.h>
#include <casacore/measures/Measures/Muvw.h>
#include <casacore/measures/Measures/MeasFrame.h>
#include <casacore/measures/Measures/MCDirection.h>
#include <casacore/measures/Measures/MCBaseline.h>
#include <casacore/measures/Measures/MeasConvert.h>
#include <casacore/measures/Measures/MFrequency.h>
#include <casacore/measures/Measures/Stokes.h>
#include <casacore/measures/TableMeasures/TableMeasDesc.h>
#include <casacore/measures/TableMeasures/TableMeasRefDesc.h>
#include <casacore/measures/TableMeasures/TableMeasValueDesc.h>
#include <casacore/measures/TableMeasures/TableQuantumDesc.h>
#include <casacore/ms/MeasurementSets/MeasurementSet.h>
#include <casacore/ms/MeasurementSets/MSColumns.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

using namespace casacore;

struct ccasa_table {
    Table table;
    std::string path;
};

namespace {

void set_err(char *err, size_t errlen, const std::string &msg) {
    if (!err || errlen == 0) return;
    size_t n = std::min(msg.size(), errlen - 1);
    std::memcpy(err, msg.data(), n);
    err[n] = 0;
}

std::string where(const ccasa_table *t, const char *col) {
    std::string s = "table '" + (t ? t->path : std::string("?")) + "'";
    if (col) s += ", column '" + std::string(col) + "'";
    return s;
}

// Runs f, converting any exception into an error message; returns 0 or -1.
template <typename F>
int guarded(char *err, size_t errlen, const std::string &context, F &&f) {
    try {
        f();
        return 0;
    } catch (const std::exception &e) {
        set_err(err, errlen, context + ": " + e.what());
    } catch (...) {
        set_err(err, errlen, context + ": unknown C++ exception");
    }
    return -1;
}

Slicer rows(int64_t start, int64_t n) { return Slicer(IPosition(1, start), IPosition(1, n)); }

void require_column(const ccasa_table *t, const char *col) {
    if (!t->table.tableDesc().isColumn(col))
        throw AipsError("no such column (add it, or check the name)");
}

// Shape of `n` cells of `col` starting at `start`, with the row axis appended; checks cellsize.
IPosition range_shape(const ccasa_table *t, const char *col, int64_t start, int64_t n, int64_t cellsize) {
    require_column(t, col);
    IPosition cell;
    const ColumnDesc &cd = t->table.tableDesc().columnDesc(col);
    if (cd.isFixedShape()) {
        cell = cd.shape();
    } else {
        TableColumn tc(t->table, col);
        if (!tc.isDefined(start)) throw AipsError("cell at row " + std::to_string(start) + " is undefined");
        cell = tc.shape(start);
    }
    if (cell.product() != cellsize)
        throw AipsError("cell has " + std::to_string(cell.product()) + " elements, caller expected " +
                        std::to_string(cellsize));
    IPosition full(cell.size() + 1);
    for (size_t i = 0; i < cell.size(); i++) full[i] = cell[i];
    full[cell.size()] = n;
    return full;
}

template <typename T, typename C>
int get_array_range(ccasa_table *t, const char *col, int64_t start, int64_t n, int64_t cellsize, C *out,
                    char *err, size_t errlen) {
    return guarded(err, errlen, where(t, col), [&] {
        IPosition shape = range_shape(t, col, start, n, cellsize);
        ArrayColumn<T> ac(t->table, col);
        Array<T> arr(shape, reinterpret_cast<T *>(out), SHARE);
        ac.getColumnRange(rows(start, n), arr, False);
    });
}

template <typename T, typename C>
int put_array_range(ccasa_table *t, const char *col, int64_t start, int64_t n, int64_t cellsize, const C *in,
                    char *err, size_t errlen) {
    return guarded(err, errlen, where(t, col), [&] {
        require_column(t, col);
        const ColumnDesc &cd = t->table.tableDesc().columnDesc(col);
        IPosition shape;
        if (cd.isFixedShape() || TableColumn(t->table, col).isDefined(start)) {
            shape = range_shape(t, col, start, n, cellsize);
        } else {
            throw AipsError("cannot infer the cell shape of an undefined cell; define it first");
        }
        ArrayColumn<T> ac(t->table, col);
        Array<T> arr(shape, const_cast<T *>(reinterpret_cast<const T *>(in)), SHARE);
        ac.putColumnRange(rows(start, n), arr);
    });
}

template <typename T, typename C>
int get_scalar_range(ccasa_table *t, const char *col, int64_t start, int64_t n, C *out, char *err, size_t errlen) {
    return guarded(err, errlen, where(t, col), [&] {
        require_column(t, col);
        ScalarColumn<T> sc(t->table, col);
        Vector<T> v(IPosition(1, n), reinterpret_cast<T *>(out), SHARE);
        sc.getColumnRange(rows(start, n), v, False);
    });
}

template <typename T, typename C>
int put_scalar_range(ccasa_table *t, const char *col, int64_t start, int64_t n, const C *in, char *err,
                     size_t errlen) {
    return guarded(err, errlen, where(t, col), [&] {
        require_column(t, col);
        ScalarColumn<T> sc(t->table, col);
        Vector<T> v(IPosition(1, n), const_cast<T *>(reinterpret_cast<const T *>(in)), SHARE);
        sc.putColumnRange(rows(start, n), v);
    });
}

MDirection::Types direction_type(const char *frame) {
    MDirection::Types tp;
    if (!MDirection::getType(tp, String(frame))) throw AipsError("unknown direction frame '" + std::string(frame) + "'");
    return tp;
}

std::vector<std::string> split_lines(const char *s) {
    std::vector<std::string> out;
    std::stringstream ss(s ? s : "");
    std::string line;
    while (std::getline(ss, line, '\n')) out.push_back(line);
    return out;
}

// A solution per SPW (nchan = 1) needs a SPECTRAL_WINDOW of one channel per SPW, as CASA's
// gaincal writes it: CHAN_FREQ = the mean channel frequency, CHAN_WIDTH, EFFECTIVE_BW and
// RESOLUTION = their sums over the channels, NUM_CHAN = 1. A copy of the MS's multi-channel
// SPECTRAL_WINDOW makes CASA's applycal abort (ArrayBase::validateConformance [n, nchan] vs [n, 1]).
void collapse_spw_channels(Table &spw) {
    const char *cols[] = {"CHAN_FREQ", "CHAN_WIDTH", "EFFECTIVE_BW", "RESOLUTION"};
    const rownr_t n = spw.nrow();
    for (const char *c : cols) {
        if (!spw.tableDesc().isColumn(c)) continue;
        const bool mean = std::string(c) == "CHAN_FREQ";
        std::vector<Double> v(n, 0.0);
        std::vector<bool> defined(n, false);
        {
            ArrayColumn<Double> col(spw, c);
            for (rownr_t r = 0; r < n; r++) {
                if (!col.isDefined(r)) continue;
                Array<Double> a = col(r);
                if (a.nelements() == 0) continue;
                Double sum = 0;
                for (auto it = a.begin(); it != a.end(); ++it) sum += *it;
                v[r] = mean ? sum / a.nelements() : sum;
                defined[r] = true;
            }
        }
        ColumnDesc old = spw.tableDesc().columnDesc(c);
        if (old.isFixedShape()) {
            // A fixed-shape column cannot hold one element per cell: re-create it with variable shape.
            TableRecord keys = old.keywordSet();
            std::string comment = old.comment();
            spw.removeColumn(c);
            ArrayColumnDesc<Double> cd(c, comment, 1);
            cd.rwKeywordSet() = keys;
            spw.addColumn(cd);
        }
        ArrayColumn<Double> col(spw, c);
        for (rownr_t r = 0; r < n; r++) {
            if (defined[r]) col.put(r, Vector<Double>(1, v[r]));
        }
    }
    if (spw.tableDesc().isColumn("NUM_CHAN")) {
        ScalarColumn<Int> nc(spw, "NUM_CHAN");
        for (rownr_t r = 0; r < n; r++) nc.put(r, 1);
    }
    spw.flush();
}

}  // namespace

extern "C" {

ccasa_table *ccasa_open(const char *path, int writable, char *err, size_t errlen) {
    ccasa_table *result = nullptr;
    guarded(err, errlen, "table '" + std::string(path) + "'", [&] {
        if (!Table::isReadable(path)) throw AipsError("not a readable casacore table (does the path exist?)");
        if (writable && !Table::isWritable(path)) throw AipsError("table is not writable (check file permissions)");
        Table tab(path, TableLock(TableLock::AutoLocking), writable ? Table::Update : Table::Old);
        result = new ccasa_table{tab, path};
    });
    return result;
}

ccasa_table *ccasa_open_subtable(ccasa_table *t, const char *name, int writable, char *err, size_t errlen) {
    ccasa_table *result = nullptr;
    guarded(err, errlen, where(t, nullptr) + ", subtable '" + std::string(name) + "'", [&] {
        const TableRecord &kw = t->table.keywordSet();
        std::string path;
        if (kw.isDefined(name) && kw.dataType(name) == TpTable) {
            path = kw.tableAttributes(name).name();
        } else {
            path = t->path + "/" + name;
        }
        if (!Table::isReadable(path)) throw AipsError("subtable is missing");
        Table tab(path, TableLock(TableLock::AutoLocking), writable ? Table::Update : Table::Old);
        result = new ccasa_table{tab, path};
    });
    return result;
}

int ccasa_close(ccasa_table *t, char *err, size_t errlen) {
    if (!t) return 0;
    int rc = guarded(err, errlen, where(t, nullptr), [&] {
        if (t->table.isWritable()) t->table.flush();
        t->table.unlock();
    });
    delete t;
    return rc;
}

int ccasa_flush(ccasa_table *t, char *err, size_t errlen) {
    return guarded(err, errlen, where(t, nullptr), [&] { t->table.flush(); });
}

int ccasa_release(ccasa_table *t, char *err, size_t errlen) {
    return guarded(err, errlen, where(t, nullptr), [&] {
        if (t->table.isWritable()) t->table.flush();
        t->table.unlock();
    });
}

int64_t ccasa_nrows(ccasa_table *t) { return (int64_t)t->table.nrow(); }

int ccasa_is_writable(ccasa_table *t) { return t->table.isWritable() ? 1 : 0; }

int64_t ccasa_column_names(ccasa_table *t, char *buf, size_t buflen) {
    std::string s;
    Vector<String> names = t->table.tableDesc().columnNames();
    for (size_t i = 0; i < names.size(); i++) {
        if (i) s += "\n";
        s += names[i];
    }
    if (buf && buflen) set_err(buf, buflen, s);
    return (int64_t)s.size();
}

int ccasa_has_column(ccasa_table *t, const char *col) { return t->table.tableDesc().isColumn(col) ? 1 : 0; }

int ccasa_cell_shape(ccasa_table *t, const char *col, int64_t row, int *ndim, int64_t *shape, char *err,
                     size_t errlen) {
    return guarded(err, errlen, where(t, col), [&] {
        require_column(t, col);
        const ColumnDesc &cd = t->table.tableDesc().columnDesc(col);
        if (cd.isScalar()) {
            *ndim = 0;
            return;
        }
        IPosition s;
        if (cd.isFixedShape()) {
            s = cd.shape();
        } else {
            TableColumn tc(t->table, col);
            if (!tc.isDefined(row)) throw AipsError("cell at row " + std::to_string(row) + " is undefined");
            s = tc.shape(row);
        }
        if (s.size() > 8) throw AipsError("more than 8 dimensions");
        *ndim = (int)s.size();
        for (size_t i = 0; i < s.size(); i++) shape[i] = s[i];
    });
}

int ccasa_column_keyword_string(ccasa_table *t, const char *col, const char *path, char *buf, size_t buflen,
                                char *err, size_t errlen) {
    return guarded(err, errlen, where(t, col) + ", keyword '" + std::string(path) + "'", [&] {
        require_column(t, col);
        TableRecord rec = TableColumn(t->table, col).keywordSet();
        std::vector<std::string> parts;
        std::stringstream ss(path);
        std::string part;
        while (std::getline(ss, part, '.')) parts.push_back(part);
        for (size_t i = 0; i + 1 < parts.size(); i++) {
            if (!rec.isDefined(parts[i])) throw AipsError("keyword missing");
            TableRecord sub = rec.subRecord(parts[i]);
            rec = sub;
        }
        if (!rec.isDefined(parts.back())) throw AipsError("keyword missing");
        set_err(buf, buflen, rec.asString(parts.back()));
    });
}

int ccasa_add_rows(ccasa_table *t, int64_t n, char *err, size_t errlen) {
    return guarded(err, errlen, where(t, nullptr), [&] { t->table.addRow(n); });
}

int ccasa_get_int_range(ccasa_table *t, const char *c, int64_t s, int64_t n, int32_t *o, char *e, size_t l) {
    return get_scalar_range<Int>(t, c, s, n, o, e, l);
}
int ccasa_put_int_range(ccasa_table *t, const char *c, int64_t s, int64_t n, const int32_t *i, char *e, size_t l) {
    return put_scalar_range<Int>(t, c, s, n, i, e, l);
}
int ccasa_get_double_range(ccasa_table *t, const char *c, int64_t s, int64_t n, double *o, char *e, size_t l) {
    return get_scalar_range<Double>(t, c, s, n, o, e, l);
}
int ccasa_put_double_range(ccasa_table *t, const char *c, int64_t s, int64_t n, const double *i, char *e, size_t l) {
    return put_scalar_range<Double>(t, c, s, n, i, e, l);
}
int ccasa_get_bool_range(ccasa_table *t, const char *c, int64_t s, int64_t n, uint8_t *o, char *e, size_t l) {
    static_assert(sizeof(Bool) == 1, "Bool must be one byte");
    return get_scalar_range<Bool>(t, c, s, n, o, e, l);
}
int ccasa_put_bool_range(ccasa_table *t, const char *c, int64_t s, int64_t n, const uint8_t *i, char *e, size_t l) {
    return put_scalar_range<Bool>(t, c, s, n, i, e, l);
}

int ccasa_set_ssm_cache(ccasa_table *t, const char *col, int64_t nbuckets, int64_t *previous, char *err,
                        size_t errlen) {
    *previous = -1;
    return guarded(err, errlen, where(t, col), [&] {
        require_column(t, col);
        if (t->table.findDataManager(col, True)->dataManagerType() != "StandardStMan") return;
        ROStandardStManAccessor acc(t->table, col, True);
        *previous = acc.getCacheSize();
        acc.setCacheSize(uInt(std::max<int64_t>(1, nbuckets)));
    });
}

int ccasa_get_string_cell(ccasa_table *t, const char *col, int64_t row, char *buf, size_t buflen, char *err,
                          size_t errlen) {
    return guarded(err, errlen, where(t, col), [&] {
        require_column(t, col);
        ScalarColumn<String> sc(t->table, col);
        set_err(buf, buflen, sc(row));
    });
}

int ccasa_get_complex_range(ccasa_table *t, const char *c, int64_t s, int64_t n, int64_t cs, float *o, char *e,
                            size_t l) {
    return get_array_range<Complex>(t, c, s, n, cs, o, e, l);
}
int ccasa_put_complex_range(ccasa_table *t, const char *c, int64_t s, int64_t n, int64_t cs, const float *i,
                            char *e, size_t l) {
    return put_array_range<Complex>(t, c, s, n, cs, i, e, l);
}
int ccasa_get_float_range(ccasa_table *t, const char *c, int64_t s, int64_t n, int64_t cs, float *o, char *e,
                          size_t l) {
    return get_array_range<Float>(t, c, s, n, cs, o, e, l);
}
int ccasa_put_float_range(ccasa_table *t, const char *c, int64_t s, int64_t n, int64_t cs, const float *i, char *e,
                          size_t l) {
    return put_array_range<Float>(t, c, s, n, cs, i, e, l);
}
int ccasa_get_bool_array_range(ccasa_table *t, const char *c, int64_t s, int64_t n, int64_t cs, uint8_t *o,
                               char *e, size_t l) {
    return get_array_range<Bool>(t, c, s, n, cs, o, e, l);
}
int ccasa_put_bool_array_range(ccasa_table *t, const char *c, int64_t s, int64_t n, int64_t cs, const uint8_t *i,
                               char *e, size_t l) {
    return put_array_range<Bool>(t, c, s, n, cs, i, e, l);
}
int ccasa_get_double_array_range(ccasa_table *t, const char *c, int64_t s, int64_t n, int64_t cs, double *o,
                                 char *e, size_t l) {
    return get_array_range<Double>(t, c, s, n, cs, o, e, l);
}
int ccasa_put_double_array_range(ccasa_table *t, const char *c, int64_t s, int64_t n, int64_t cs,
                                 const double *i, char *e, size_t l) {
    return put_array_range<Double>(t, c, s, n, cs, i, e, l);
}

int ccasa_get_int_array_cell(ccasa_table *t, const char *col, int64_t row, int64_t cellsize, int32_t *out,
                             char *err, size_t errlen) {
    return guarded(err, errlen, where(t, col), [&] {
        require_column(t, col);
        ArrayColumn<Int> ac(t->table, col);
        Array<Int> a = ac(row);
        if ((int64_t)a.nelements() > cellsize) throw AipsError("cell larger than caller's buffer");
        for (int64_t i = 0; i < cellsize; i++) out[i] = -1;
        size_t i = 0;
        for (auto it = a.begin(); it != a.end(); ++it) out[i++] = *it;
    });
}

int ccasa_get_double_array_cell(ccasa_table *t, const char *col, int64_t row, int64_t cellsize, double *out,
                                char *err, size_t errlen) {
    return guarded(err, errlen, where(t, col), [&] {
        require_column(t, col);
        ArrayColumn<Double> ac(t->table, col);
        Array<Double> a = ac(row);
        if ((int64_t)a.nelements() > cellsize) throw AipsError("cell larger than caller's buffer");
        for (int64_t i = 0; i < cellsize; i++) out[i] = 0;
        size_t i = 0;
        for (auto it = a.begin(); it != a.end(); ++it) out[i++] = *it;
    });
}

int ccasa_add_data_column(ccasa_table *t, const char *col, const char *like_col, char *err, size_t errlen) {
    return guarded(err, errlen, where(t, col), [&] {
        if (!t->table.isWritable()) throw AipsError("table is opened read-only");
        if (t->table.tableDesc().isColumn(col)) return;
        require_column(t, like_col);
        const ColumnDesc &like = t->table.tableDesc().columnDesc(like_col);
        uInt nrow = t->table.nrow();
        IPosition cell;
        if (like.isFixedShape()) {
            cell = like.shape();
        } else if (nrow > 0) {
            cell = TableColumn(t->table, like_col).shape(0);
        } else {
            throw AipsError("cannot infer the cell shape from an empty table");
        }
        int64_t rowsPerTile = std::max<int64_t>(1, (1 << 20) / (cell.product() * 8));
        IPosition tile(cell.size() + 1);
        for (size_t i = 0; i < cell.size(); i++) tile[i] = cell[i];
        tile[cell.size()] = rowsPerTile;
        TableDesc td;
        std::string dmName = std::string("Tiled") + col;
        if (like.isFixedShape()) {
            td.addColumn(ArrayColumnDesc<Complex>(col, "", cell, ColumnDesc::FixedShape));
            TiledColumnStMan stman(dmName, tile);
            t->table.addColumn(td, stman);
        } else {
            td.addColumn(ArrayColumnDesc<Complex>(col, "", cell.size()));
            TiledShapeStMan stman(dmName, tile);
            t->table.addColumn(td, stman);
        }
        // Define every cell, like CASA: CORRECTED_DATA starts as DATA, MODEL_DATA as zero.
        bool copy = std::string(col) == "CORRECTED_DATA" && t->table.tableDesc().isColumn("DATA");
        ArrayColumn<Complex> dst(t->table, col);
        ArrayColumn<Complex> src(t->table, copy ? "DATA" : like_col);
        const uInt chunk = 10000;
        for (uInt r = 0; r < nrow; r += chunk) {
            uInt n = std::min(chunk, nrow - r);
            bool uniform = like.isFixedShape();
            if (!uniform) {
                uniform = true;
                IPosition s0 = src.shape(r);
                for (uInt k = 1; k < n && uniform; k++) uniform = src.shape(r + k).isEqual(s0);
            }
            if (uniform) {
                Array<Complex> a = src.getColumnRange(rows(r, n));
                if (!copy) a = Complex(0, 0);
                dst.putColumnRange(rows(r, n), a);
            } else {
                for (uInt k = 0; k < n; k++) {
                    Array<Complex> a = src(r + k);
                    if (!copy) a = Complex(0, 0);
                    dst.put(r + k, a);
                }
            }
        }
        t->table.flush();
    });
}

int ccasa_remove_column(ccasa_table *t, const char *col, char *err, size_t errlen) {
    return guarded(err, errlen, where(t, col), [&] {
        if (!t->table.isWritable()) throw AipsError("table is opened read-only");
        if (std::string(col) == "DATA") throw AipsError("refusing to remove DATA");
        if (t->table.tableDesc().isColumn(col)) t->table.removeColumn(col);
        t->table.flush();
    });
}

ccasa_table *ccasa_ms_create(const char *path, const ccasa_ms_spec *sp, char *err, size_t errlen) {
    ccasa_table *result = nullptr;
    guarded(err, errlen, "creating MS '" + std::string(path) + "'", [&] {
        if (sp->nant < 2 || sp->nspw < 1 || sp->nchan < 1 || sp->npol < 1) throw AipsError("empty dimensions");
        auto names = split_lines(sp->antenna_names);
        if ((int)names.size() != sp->nant) throw AipsError("antenna name count differs from nant");
        const int npol = sp->npol, nchan = sp->nchan;

        TableDesc td = MS::requiredTableDesc();
        td.removeColumn(MS::columnName(MS::FLAG));
        td.removeColumn(MS::columnName(MS::WEIGHT));
        td.removeColumn(MS::columnName(MS::SIGMA));
        MS::addColumnToDesc(td, MS::DATA, IPosition(2, npol, nchan), ColumnDesc::FixedShape);
        MS::addColumnToDesc(td, MS::FLAG, IPosition(2, npol, nchan), ColumnDesc::FixedShape);
        MS::addColumnToDesc(td, MS::WEIGHT, IPosition(1, npol), ColumnDesc::FixedShape);
        MS::addColumnToDesc(td, MS::SIGMA, IPosition(1, npol), ColumnDesc::FixedShape);

        SetupNewTable setup(path, td, Table::New);
        int64_t rpt = std::max<int64_t>(1, (1 << 20) / (npol * nchan * 8));
        TiledColumnStMan dataMan("TiledDATA", IPosition(3, npol, nchan, rpt));
        TiledColumnStMan flagMan("TiledFlag", IPosition(3, npol, nchan, rpt * 8));
        TiledColumnStMan uvwMan("TiledUVW", IPosition(2, 3, 43690));
        TiledColumnStMan wMan("TiledWgt", IPosition(2, npol, 65536));
        TiledColumnStMan sMan("TiledSigma", IPosition(2, npol, 65536));
        setup.bindColumn(MS::columnName(MS::DATA), dataMan);
        setup.bindColumn(MS::columnName(MS::FLAG), flagMan);
        setup.bindColumn(MS::columnName(MS::UVW), uvwMan);
        setup.bindColumn(MS::columnName(MS::WEIGHT), wMan);
        setup.bindColumn(MS::columnName(MS::SIGMA), sMan);
        MeasurementSet ms(setup, 0);
        ms.createDefaultSubtables(Table::New);
        {
            MSMainColumns mc(ms);
            mc.setUVWRef(Muvw::J2000);
        }
        MDirection::Types dirType = direction_type(sp->direction_frame);

        // ANTENNA
        {
            MSAntennaColumns ac(ms.antenna());
            ms.antenna().addRow(sp->nant);
            for (int a = 0; a < sp->nant; a++) {
                ac.name().put(a, names[a]);
                ac.station().put(a, names[a]);
                ac.type().put(a, "GROUND-BASED");
                ac.mount().put(a, "ALT-AZ");
                Vector<Double> pos(3);
                for (int k = 0; k < 3; k++) pos[k] = sp->positions[3 * a + k];
                ac.position().put(a, pos);
                ac.offset().put(a, Vector<Double>(3, 0.0));
                ac.dishDiameter().put(a, sp->dish_diameter);
                ac.flagRow().put(a, False);
            }
        }
        // SPECTRAL_WINDOW and DATA_DESCRIPTION
        {
            MSSpWindowColumns sc(ms.spectralWindow());
            MSDataDescColumns dc(ms.dataDescription());
            ms.spectralWindow().addRow(sp->nspw);
            ms.dataDescription().addRow(sp->nspw);
            for (int s = 0; s < sp->nspw; s++) {
                Vector<Double> f(nchan), w(nchan, sp->chan_width);
                for (int c = 0; c < nchan; c++) f[c] = sp->chan_freqs[s * nchan + c];
                sc.numChan().put(s, nchan);
                sc.name().put(s, "SPW" + std::to_string(s));
                sc.chanFreq().put(s, f);
                sc.chanWidth().put(s, w);
                sc.effectiveBW().put(s, w);
                sc.resolution().put(s, w);
                sc.refFrequency().put(s, f[0]);
                sc.totalBandwidth().put(s, std::abs(sp->chan_width) * nchan);
                sc.measFreqRef().put(s, MFrequency::TOPO);
                sc.netSideband().put(s, 1);
                sc.freqGroup().put(s, 0);
                sc.freqGroupName().put(s, "");
                sc.ifConvChain().put(s, 0);
                sc.flagRow().put(s, False);
                dc.spectralWindowId().put(s, s);
                dc.polarizationId().put(s, 0);
                dc.flagRow().put(s, False);
            }
        }
        // POLARIZATION
        {
            MSPolarizationColumns pc(ms.polarization());
            ms.polarization().addRow(1);
            Vector<Int> ct(npol);
            Matrix<Int> prod(2, npol);
            for (int p = 0; p < npol; p++) {
                ct[p] = sp->corr_types[p];
                Stokes::StokesTypes st = Stokes::type(ct[p]);
                int r1 = 0, r2 = 0;
                switch (st) {
                    case Stokes::XX: case Stokes::RR: r1 = 0; r2 = 0; break;
                    case Stokes::XY: case Stokes::RL: r1 = 0; r2 = 1; break;
                    case Stokes::YX: case Stokes::LR: r1 = 1; r2 = 0; break;
                    case Stokes::YY: case Stokes::LL: r1 = 1; r2 = 1; break;
                    default: throw AipsError("unsupported correlation type " + std::to_string(ct[p]));
                }
                prod(0, p) = r1;
                prod(1, p) = r2;
            }
            pc.numCorr().put(0, npol);
            pc.corrType().put(0, ct);
            pc.corrProduct().put(0, prod);
            pc.flagRow().put(0, False);
        }
        // FIELD
        {
            MSFieldColumns fc(ms.field());
            fc.setDirectionRef(dirType);
            ms.field().addRow(1);
            Matrix<Double> dir(2, 1);
            dir(0, 0) = sp->phase_ra;
            dir(1, 0) = sp->phase_dec;
            fc.name().put(0, sp->field_name);
            fc.code().put(0, "");
            fc.time().put(0, sp->time_start);
            fc.numPoly().put(0, 0);
            fc.delayDir().put(0, dir);
            fc.phaseDir().put(0, dir);
            fc.referenceDir().put(0, dir);
            fc.sourceId().put(0, -1);
            fc.flagRow().put(0, False);
        }
        // OBSERVATION
        {
            MSObservationColumns oc(ms.observation());
            ms.observation().addRow(1);
            Vector<Double> tr(2);
            tr[0] = sp->time_start;
            tr[1] = sp->time_end;
            oc.telescopeName().put(0, sp->telescope_name);
            oc.timeRange().put(0, tr);
            oc.observer().put(0, "selfcal simulate");
            oc.project().put(0, "selfcal");
            oc.scheduleType().put(0, "");
            oc.schedule().put(0, Vector<String>(1, ""));
            oc.log().put(0, Vector<String>(1, ""));
            oc.releaseDate().put(0, sp->time_start);
            oc.flagRow().put(0, False);
        }
        // FEED (one per antenna, all SPWs)
        {
            MSFeedColumns fc(ms.feed());
            ms.feed().addRow(sp->nant);
            bool circular = Stokes::type(sp->corr_types[0]) == Stokes::RR || Stokes::type(sp->corr_types[0]) == Stokes::LL;
            Vector<String> ptype(2);
            ptype[0] = circular ? "R" : "X";
            ptype[1] = circular ? "L" : "Y";
            Matrix<Complex> resp(2, 2, Complex(0, 0));
            resp(0, 0) = resp(1, 1) = Complex(1, 0);
            Vector<Double> angle(2);
            angle[0] = 0;
            angle[1] = M_PI / 2;
            for (int a = 0; a < sp->nant; a++) {
                fc.antennaId().put(a, a);
                fc.feedId().put(a, 0);
                fc.spectralWindowId().put(a, -1);
                fc.time().put(a, sp->time_start);
                fc.interval().put(a, 1e30);
                fc.numReceptors().put(a, 2);
                fc.beamId().put(a, -1);
                fc.beamOffset().put(a, Matrix<Double>(2, 2, 0.0));
                fc.polarizationType().put(a, ptype);
                fc.polResponse().put(a, resp);
                fc.position().put(a, Vector<Double>(3, 0.0));
                fc.receptorAngle().put(a, angle);
            }
        }
        ms.addRow(sp->nrows);
        ms.flush();
        Table tab(path, TableLock(TableLock::AutoLocking), Table::Update);
        result = new ccasa_table{tab, path};
    });
    return result;
}

int ccasa_antenna_uvw(const double *itrf, int32_t nant, const double *times, int32_t ntimes, double ra, double dec,
                      const char *frame, double *out, char *err, size_t errlen) {
    return guarded(err, errlen, "computing UVW", [&] {
        double c[3] = {0, 0, 0};
        for (int a = 0; a < nant; a++)
            for (int k = 0; k < 3; k++) c[k] += itrf[3 * a + k] / nant;
        MPosition refPos(MVPosition(c[0], c[1], c[2]), MPosition::ITRF);
        MDirection dir(MVDirection(ra, dec), MDirection::Ref(direction_type(frame)));
        for (int ti = 0; ti < ntimes; ti++) {
            MEpoch ep(MVEpoch(Quantity(times[ti], "s")), MEpoch::UTC);
            MeasFrame mf(ep, refPos);
            MDirection j2000 = MDirection::Convert(dir, MDirection::Ref(MDirection::J2000, mf))();
            mf.set(j2000);
            MBaseline::Ref bref(MBaseline::ITRF, mf);
            MBaseline::Convert toJ2000(bref, MBaseline::Ref(MBaseline::J2000));
            MVDirection pd = j2000.getValue();
            for (int a = 0; a < nant; a++) {
                MVBaseline bl(MVPosition(itrf[3 * a] - c[0], itrf[3 * a + 1] - c[1], itrf[3 * a + 2] - c[2]));
                MVBaseline blj = toJ2000(MBaseline(bl, bref)).getValue();
                MVuvw uvw(blj, pd);
                for (int k = 0; k < 3; k++) out[((int64_t)ti * nant + a) * 3 + k] = uvw(k);
            }
        }
    });
}

int ccasa_convert_direction(double ra, double dec, const char *from, const char *to, double epoch, double *ra_out,
                            double *dec_out, char *err, size_t errlen) {
    return guarded(err, errlen, std::string("converting a direction from ") + from + " to " + to, [&] {
        MEpoch ep(MVEpoch(Quantity(epoch, "s")), MEpoch::UTC);
        MeasFrame mf(ep);
        MDirection d(MVDirection(ra, dec), MDirection::Ref(direction_type(from), mf));
        MDirection r = MDirection::Convert(d, MDirection::Ref(direction_type(to), mf))();
        Vector<Double> ang = r.getAngle("rad").getValue();
        *ra_out = ang[0];
        *dec_out = ang[1];
    });
}

int ccasa_caltable_write(const char *path, const char *ms_path, const ccasa_caltable_spec *sp, char *err,
                         size_t errlen) {
    return guarded(err, errlen, "writing calibration table '" + std::string(path) + "'", [&] {
        TableDesc td("", "", TableDesc::Scratch);
        td.addColumn(ScalarColumnDesc<Double>("TIME", "Time of solution"));
        td.addColumn(ScalarColumnDesc<Int>("FIELD_ID", ""));
        td.addColumn(ScalarColumnDesc<Int>("SPECTRAL_WINDOW_ID", ""));
        td.addColumn(ScalarColumnDesc<Int>("ANTENNA1", ""));
        td.addColumn(ScalarColumnDesc<Int>("ANTENNA2", ""));
        td.addColumn(ScalarColumnDesc<Double>("INTERVAL", ""));
        td.addColumn(ScalarColumnDesc<Int>("SCAN_NUMBER", ""));
        td.addColumn(ScalarColumnDesc<Int>("OBSERVATION_ID", ""));
        td.addColumn(ArrayColumnDesc<Complex>("CPARAM", "", 2));
        td.addColumn(ArrayColumnDesc<Float>("PARAMERR", "", 2));
        td.addColumn(ArrayColumnDesc<Bool>("FLAG", "", 2));
        td.addColumn(ArrayColumnDesc<Float>("SNR", "", 2));
        td.addColumn(ArrayColumnDesc<Float>("WEIGHT", "", 2));
        {
            // Units given to the measure itself: TableMeasDesc<MEpoch> would otherwise write its
            // default "d" over QuantumUnits, and CASA warns (NewCalTable::conformant) on "d".
            TableMeasRefDesc ref(MEpoch::UTC);
            TableMeasValueDesc val(td, "TIME");
            TableMeasDesc<MEpoch> meas(val, ref, Vector<Unit>(1, Unit("s")));
            meas.write(td);
            TableQuantumDesc qi(td, "INTERVAL", Unit("s"));
            qi.write(td);
        }
        SetupNewTable setup(path, td, Table::New);
        // A bucket cache that holds the whole table (about 32 rows per bucket): the columns are
        // written one after the other, and the default 1-bucket cache would read and write every
        // bucket once per column.
        StandardStMan ssm("SSM", 0, uInt(std::min<int64_t>(65536, sp->nrows / 16 + 16)));
        setup.bindAll(ssm);
        Table tab(setup, sp->nrows);
        TableInfo &info = tab.tableInfo();
        info.setType("Calibration");
        info.setSubType(sp->vis_cal);
        info.readmeAddLine("Written by selfcal");

        const int64_t n = sp->nrows;
        const IPosition cell(2, sp->npol, sp->nchan);
        const int64_t cs = cell.product();
        ScalarColumn<Double>(tab, "TIME").putColumn(Vector<Double>(IPosition(1, n), const_cast<double *>(sp->time), SHARE));
        ScalarColumn<Double>(tab, "INTERVAL").putColumn(Vector<Double>(IPosition(1, n), const_cast<double *>(sp->interval), SHARE));
        ScalarColumn<Int>(tab, "FIELD_ID").putColumn(Vector<Int>(IPosition(1, n), const_cast<int32_t *>(sp->field_id), SHARE));
        ScalarColumn<Int>(tab, "SPECTRAL_WINDOW_ID").putColumn(Vector<Int>(IPosition(1, n), const_cast<int32_t *>(sp->spw_id), SHARE));
        ScalarColumn<Int>(tab, "ANTENNA1").putColumn(Vector<Int>(IPosition(1, n), const_cast<int32_t *>(sp->antenna1), SHARE));
        ScalarColumn<Int>(tab, "ANTENNA2").putColumn(Vector<Int>(IPosition(1, n), const_cast<int32_t *>(sp->antenna2), SHARE));
        ScalarColumn<Int>(tab, "SCAN_NUMBER").putColumn(Vector<Int>(IPosition(1, n), const_cast<int32_t *>(sp->scan), SHARE));
        ScalarColumn<Int>(tab, "OBSERVATION_ID").putColumn(Vector<Int>(IPosition(1, n), const_cast<int32_t *>(sp->obs_id), SHARE));
        ArrayColumn<Complex> cp(tab, "CPARAM");
        ArrayColumn<Float> pe(tab, "PARAMERR"), snr(tab, "SNR");
        ArrayColumn<Bool> fl(tab, "FLAG");
        const Complex *cpd = reinterpret_cast<const Complex *>(sp->cparam);
        const Bool *fld = reinterpret_cast<const Bool *>(sp->flag);
        for (int64_t r = 0; r < n; r++) {
            cp.put(r, Array<Complex>(cell, const_cast<Complex *>(cpd + r * cs), SHARE));
            pe.put(r, Array<Float>(cell, const_cast<float *>(sp->paramerr + r * cs), SHARE));
            snr.put(r, Array<Float>(cell, const_cast<float *>(sp->snr + r * cs), SHARE));
            fl.put(r, Array<Bool>(cell, const_cast<Bool *>(fld + r * cs), SHARE));
        }

        TableRecord &kw = tab.rwKeywordSet();
        kw.define("ParType", "Complex");
        kw.define("MSName", Path(ms_path).baseName());
        kw.define("VisCal", sp->vis_cal);
        kw.define("PolBasis", "unknown");
        kw.define("CASA_Version", "selfcal");
        Table ms(ms_path, Table::Old);
        const char *subs[] = {"OBSERVATION", "ANTENNA", "FIELD", "SPECTRAL_WINDOW"};
        for (const char *s : subs) {
            Table src = ms.keywordSet().asTable(s);
            src.deepCopy(std::string(path) + "/" + s, Table::New, True);
            if (sp->nchan == 1 && std::string(s) == "SPECTRAL_WINDOW") {
                Table spw(std::string(path) + "/" + s, Table::Update);
                collapse_spw_channels(spw);
            }
            kw.defineTable(s, Table(std::string(path) + "/" + s));
        }
        {
            Table hist = ms.keywordSet().isDefined("HISTORY") ? ms.keywordSet().asTable("HISTORY") : Table();
            if (!hist.isNull()) {
                hist.deepCopy(std::string(path) + "/HISTORY", Table::New, True, Table::AipsrcEndian, True);
                kw.defineTable("HISTORY", Table(std::string(path) + "/HISTORY"));
            }
        }
        tab.flush();
    });
}

void ccasa_quiet_logging(int quiet) {
    try {
        if (quiet) {
            LogSinkInterface *sink = new NullLogSink();
            LogSink::globalSink(sink);
        }
    } catch (...) {
    }
}

}  // extern "C"
