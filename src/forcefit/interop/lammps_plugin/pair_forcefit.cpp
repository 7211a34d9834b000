// pair_style forcefit: a forcefit model (any kind) as a LAMMPS pair style.
//
// LAMMPS owns the atoms, ghost atoms, neighbour lists, MPI and integration. For each block of
// local (centre) atoms this style hands forcefit's engine, through the embedded Python
// interpreter, what the model reads: the atomic number of every local and ghost atom and the
// pairs i-j within the model's cutoff (i a centre) with r_ij = x_j - x_i. The engine
// (forcefit.interop.lammps_bridge) returns each centre's energy E_i and g_ij = dE/dr_ij per
// pair, from which this style makes the forces (f_i += g_ij, f_j -= g_ij, ghosts included, so
// newton pair must be on) and the virial (W = -sum r_ij g_ij). A committee also returns every
// member's energies and g_ij: their per-atom spread is kept for `fix pair` and dumps
// (forces_std needs the members' forces summed over ranks: a reverse communication). Per-atom
// extrapolation counts and the extrapolation grade γ come back too (fix pair: extrapolation, gamma).
//
//   pair_style forcefit MODEL [block N] [threads N] [trust_code yes]
//   pair_coeff * * El1 El2 ...        (one element per LAMMPS type, NULL for types of other styles)

#include "pair_forcefit.h"

#include <Python.h>

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#ifndef FORCEFIT_PYTHON
#define FORCEFIT_PYTHON "python3"
#endif

using namespace LAMMPS_NS;

namespace {

// Start the interpreter of the environment forcefit is installed in, unless LAMMPS runs inside
// Python already (the `lammps` module). FORCEFIT_PYTHON (environment) overrides the python
// the plugin was built with. The interpreter lives as long as the process.
const char *start_python()
{
  if (Py_IsInitialized()) return nullptr;
  const char *python = std::getenv("FORCEFIT_PYTHON");
  if (python == nullptr || *python == '\0') python = FORCEFIT_PYTHON;
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.install_signal_handlers = 0;
  config.parse_argv = 0;
  PyStatus status = PyConfig_SetBytesString(&config, &config.program_name, python);
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) return status.err_msg ? status.err_msg : "Python did not start";
  PyEval_SaveThread();    // every call below takes the GIL for itself
  return nullptr;
}

bool python_finalizing()
{
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

struct Gil {
  PyGILState_STATE state;
  Gil() : state(PyGILState_Ensure()) {}
  ~Gil() { PyGILState_Release(state); }
};

// A writable memoryview over a vector's storage (never null: empty vectors get capacity 1).
template <typename T> PyObject *view(std::vector<T> &values, size_t count)
{
  if (values.size() < std::max<size_t>(count, 1)) values.resize(std::max<size_t>(count, 1));
  return PyMemoryView_FromMemory(reinterpret_cast<char *>(values.data()), count * sizeof(T), PyBUF_WRITE);
}

}    // namespace

PairForcefit::PairForcefit(LAMMPS *lmp) :
    Pair(lmp), block_atoms(50000), threads(1), trust_code(0), bridge(nullptr), cutoff(0.0), members(0), has_grade(0),
    nmax(0), forces_std(nullptr), energy_std(nullptr), extrapolation(nullptr), gamma(nullptr), member_forces(nullptr)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;
  centroidstressflag = CENTROID_NOTAVAIL;
}

PairForcefit::~PairForcefit()
{
  if (bridge != nullptr && Py_IsInitialized() && !python_finalizing()) {
    Gil gil;
    Py_DECREF(bridge);
  }
  memory->destroy(forces_std);
  memory->destroy(energy_std);
  memory->destroy(extrapolation);
  memory->destroy(gamma);
  memory->destroy(member_forces);
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairForcefit::python_error(const char *where)
{
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  std::string message = std::string("pair_style forcefit, ") + where;
  if (type != nullptr) message += std::string(": ") + reinterpret_cast<PyTypeObject *>(type)->tp_name;
  if (value != nullptr) {
    PyObject *text = PyObject_Str(value);
    if (text != nullptr) message += std::string(": ") + PyUnicode_AsUTF8(text);
    Py_XDECREF(text);
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(traceback);
  error->one(FLERR, "{}", message);
}

void PairForcefit::settings(int narg, char **arg)
{
  if (narg < 1) error->all(FLERR, "Illegal pair_style forcefit command: pair_style forcefit MODEL [block N] [threads N] [trust_code yes]");
  model_path = arg[0];
  trust_code = 0;
  const char *omp = std::getenv("OMP_NUM_THREADS");
  threads = omp != nullptr && std::atoi(omp) > 0 ? std::atoi(omp) : 1;
  for (int k = 1; k < narg; k += 2) {
    if (k + 1 >= narg) error->all(FLERR, "pair_style forcefit: keyword {} needs a value", arg[k]);
    if (strcmp(arg[k], "block") == 0) block_atoms = utils::bnumeric(FLERR, arg[k + 1], false, lmp);
    else if (strcmp(arg[k], "threads") == 0) threads = utils::inumeric(FLERR, arg[k + 1], false, lmp);
    else if (strcmp(arg[k], "trust_code") == 0) trust_code = utils::logical(FLERR, arg[k + 1], false, lmp);
    else error->all(FLERR, "pair_style forcefit: unknown keyword {} (block N, threads N, trust_code yes)", arg[k]);
  }
  if (block_atoms < 1 || threads < 1) error->all(FLERR, "pair_style forcefit: block and threads must be positive");
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "pair_style forcefit needs units metal (eV, Å), not {}", update->unit_style);
}

void PairForcefit::allocate()
{
  allocated = 1;
  int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) setflag[i][j] = 0;
}

void PairForcefit::load_model(const std::vector<std::string> &elements)
{
  if (const char *failure = start_python()) error->all(FLERR, "pair_style forcefit: {}", failure);
  Gil gil;
  if (bridge != nullptr) {
    Py_DECREF(bridge);
    bridge = nullptr;
  }
  PyObject *module = PyImport_ImportModule("forcefit.interop.lammps_bridge");
  if (module == nullptr) python_error("importing forcefit (is FORCEFIT_PYTHON the python forcefit is installed in?)");
  PyObject *names = PyList_New(0);
  for (const auto &e : elements) {
    PyObject *name = PyUnicode_FromString(e.c_str());
    PyList_Append(names, name);
    Py_DECREF(name);
  }
  bridge = PyObject_CallMethod(module, "PairStyle", "sOii", model_path.c_str(), names, threads, trust_code);
  Py_DECREF(names);
  Py_DECREF(module);
  if (bridge == nullptr) python_error(("loading " + model_path).c_str());
  PyObject *numbers = PyObject_GetAttrString(bridge, "numbers");
  PyObject *value = PyObject_GetAttrString(bridge, "cutoff");
  PyObject *count = PyObject_GetAttrString(bridge, "members");
  PyObject *grade = PyObject_GetAttrString(bridge, "has_grade");
  if (numbers == nullptr || value == nullptr || count == nullptr || grade == nullptr) python_error("reading the model");
  cutoff = PyFloat_AsDouble(value);
  members = static_cast<int>(PyLong_AsLong(count));
  has_grade = static_cast<int>(PyLong_AsLong(grade));
  Py_DECREF(grade);
  for (size_t t = 0; t < elements.size(); t++) type_number[t + 1] = PyLong_AsLong(PyList_GetItem(numbers, t));
  Py_DECREF(numbers);
  Py_DECREF(value);
  Py_DECREF(count);
  comm_reverse = 3 * members;
}

void PairForcefit::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  int ntypes = atom->ntypes;
  if (narg != 2 + ntypes || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_coeff for forcefit is `pair_coeff * * El1 ... El{}`: one element (or NULL) per atom type", ntypes);
  std::vector<std::string> elements(arg + 2, arg + 2 + ntypes);
  type_number.assign(ntypes + 1, 0);
  load_model(elements);    // the bridge gives 0 for NULL and refuses elements the model lacks
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = (type_number[i] > 0 && type_number[j] > 0) ? 1 : 0;
}

void PairForcefit::init_style()
{
  if (force->newton_pair == 0) error->all(FLERR, "pair_style forcefit needs newton pair on");
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

double PairForcefit::init_one(int, int)
{
  return cutoff;
}

void PairForcefit::grow_peratom()
{
  nmax = atom->nmax;
  memory->destroy(forces_std);
  memory->destroy(energy_std);
  memory->destroy(extrapolation);
  memory->destroy(gamma);
  memory->destroy(member_forces);
  memory->create(forces_std, nmax, "pair:forces_std");
  memory->create(gamma, nmax, "pair:gamma");
  memory->create(energy_std, nmax, "pair:energy_std");
  memory->create(extrapolation, nmax, "pair:extrapolation");
  memory->create(member_forces, static_cast<bigint>(nmax) * std::max(3 * members, 1), "pair:member_forces");
}

void PairForcefit::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  if (atom->nmax > nmax) grow_peratom();
  int nlocal = atom->nlocal;
  int nall = nlocal + atom->nghost;
  int *type = atom->type;
  numbers.resize(std::max(nall, 1));
  for (int k = 0; k < nall; k++) numbers[k] = type_number[type[k]];
  for (int k = 0; k < nlocal; k++) forces_std[k] = energy_std[k] = extrapolation[k] = gamma[k] = 0.0;
  if (members > 0) std::fill(member_forces, member_forces + static_cast<bigint>(nall) * 3 * members, 0.0);
  for (int start = 0; start < list->inum; start += block_atoms)
    evaluate_block(start, static_cast<int>(std::min<bigint>(list->inum, start + block_atoms)));
  if (members > 0) {
    comm->reverse_comm(this);
    for (int i = 0; i < nlocal; i++) {
      const double *fm = member_forces + static_cast<bigint>(i) * 3 * members;
      double mean[3] = {0.0, 0.0, 0.0}, spread = 0.0;
      for (int m = 0; m < members; m++)
        for (int c = 0; c < 3; c++) mean[c] += fm[3 * m + c] / members;
      for (int m = 0; m < members; m++)
        for (int c = 0; c < 3; c++) spread += (fm[3 * m + c] - mean[c]) * (fm[3 * m + c] - mean[c]);
      forces_std[i] = std::sqrt(spread / members);
    }
  }
}

void PairForcefit::evaluate_block(int ii_first, int ii_last)
{
  double **x = atom->x, **f = atom->f;
  int *ilist = list->ilist, *numneigh = list->numneigh, **firstneigh = list->firstneigh;
  int a = ilist[ii_first], b = ilist[ii_first] + 1;
  for (int ii = ii_first; ii < ii_last; ii++) {
    a = std::min(a, ilist[ii]);
    b = std::max(b, ilist[ii] + 1);
  }
  double cut2 = cutoff * cutoff;
  pair_i.clear();
  pair_j.clear();
  vectors.clear();
  for (int ii = ii_first; ii < ii_last; ii++) {
    int i = ilist[ii];
    if (numbers[i] == 0) continue;
    int *jlist = firstneigh[i];
    for (int jj = 0; jj < numneigh[i]; jj++) {
      int j = jlist[jj] & NEIGHMASK;
      if (numbers[j] == 0) continue;
      double d[3] = {x[j][0] - x[i][0], x[j][1] - x[i][1], x[j][2] - x[i][2]};
      if (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] >= cut2) continue;
      pair_i.push_back(i);
      pair_j.push_back(j);
      vectors.insert(vectors.end(), d, d + 3);
    }
  }
  size_t n_pairs = pair_i.size(), n_centres = static_cast<size_t>(b - a), n_all = atom->nlocal + atom->nghost;
  {
    Gil gil;
    PyObject *result = PyObject_CallMethod(
        bridge, "compute", "(NNNNii)(NNNNNN)", view(numbers, n_all), view(pair_i, n_pairs), view(pair_j, n_pairs),
        view(vectors, 3 * n_pairs), a, b, view(energies, n_centres), view(gradients, 3 * n_pairs),
        view(member_energies, members * n_centres), view(member_gradients, members * 3 * n_pairs), view(outside, n_centres), view(grades, n_centres));
    if (result == nullptr) python_error("evaluating the model");
    Py_DECREF(result);
  }
  for (int ii = ii_first; ii < ii_last; ii++) {
    int i = ilist[ii];
    if (numbers[i] == 0) continue;
    double energy = energies[i - a];
    if (eflag_global) eng_vdwl += energy;
    if (eflag_atom) eatom[i] += energy;
    extrapolation[i] = outside[i - a];
    gamma[i] = grades[i - a];
    if (members > 0) {
      double mean = 0.0, spread = 0.0;
      for (int m = 0; m < members; m++) mean += member_energies[m * n_centres + i - a] / members;
      for (int m = 0; m < members; m++) {
        double e = member_energies[m * n_centres + i - a] - mean;
        spread += e * e;
      }
      energy_std[i] = std::sqrt(spread / members);
    }
  }
  for (size_t p = 0; p < n_pairs; p++) {
    int i = static_cast<int>(pair_i[p]), j = static_cast<int>(pair_j[p]);
    const double *g = &gradients[3 * p], *r = &vectors[3 * p];
    for (int c = 0; c < 3; c++) {
      f[i][c] += g[c];
      f[j][c] -= g[c];
    }
    if (vflag_either) {
      double v[6] = {-r[0] * g[0], -r[1] * g[1], -r[2] * g[2], -r[0] * g[1], -r[0] * g[2], -r[1] * g[2]};
      if (vflag_global)
        for (int c = 0; c < 6; c++) virial[c] += v[c];
      if (vflag_atom)
        for (int c = 0; c < 6; c++) {
          vatom[i][c] += 0.5 * v[c];
          vatom[j][c] += 0.5 * v[c];
        }
    }
    for (int m = 0; m < members; m++) {
      const double *gm = &member_gradients[(static_cast<size_t>(m) * n_pairs + p) * 3];
      double *fi = member_forces + (static_cast<bigint>(i) * members + m) * 3;
      double *fj = member_forces + (static_cast<bigint>(j) * members + m) * 3;
      for (int c = 0; c < 3; c++) {
        fi[c] += gm[c];
        fj[c] -= gm[c];
      }
    }
  }
}

int PairForcefit::pack_reverse_comm(int n, int first, double *buf)
{
  int width = 3 * members, k = 0;
  for (int i = first; i < first + n; i++)
    for (int c = 0; c < width; c++) buf[k++] = member_forces[static_cast<bigint>(i) * width + c];
  return k;
}

void PairForcefit::unpack_reverse_comm(int n, int *indices, double *buf)
{
  int width = 3 * members, k = 0;
  for (int m = 0; m < n; m++)
    for (int c = 0; c < width; c++) member_forces[static_cast<bigint>(indices[m]) * width + c] += buf[k++];
}

void *PairForcefit::extract_peratom(const char *name, int &ncol)
{
  ncol = 0;
  if (strcmp(name, "extrapolation") == 0) return extrapolation;
  if (has_grade && strcmp(name, "gamma") == 0) return gamma;
  if (members > 0 && strcmp(name, "forces_std") == 0) return forces_std;
  if (members > 0 && strcmp(name, "energy_std") == 0) return energy_std;
  return nullptr;
}

double PairForcefit::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += static_cast<double>(nmax) * (4 + 3 * members) * sizeof(double);
  bytes += static_cast<double>(vectors.capacity() + gradients.capacity() + member_gradients.capacity()) * sizeof(double);
  bytes += static_cast<double>(pair_i.capacity() + pair_j.capacity() + numbers.capacity()) * sizeof(long);
  return bytes;
}
