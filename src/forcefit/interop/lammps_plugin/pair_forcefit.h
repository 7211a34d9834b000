// pair_style forcefit: any forcefit model in LAMMPS (see pair_forcefit.cpp).
#ifndef FORCEFIT_PAIR_FORCEFIT_H
#define FORCEFIT_PAIR_FORCEFIT_H

#include "pair.h"

#include <string>
#include <vector>

struct _object;  // PyObject, without Python.h in this header

namespace LAMMPS_NS {

class PairForcefit : public Pair {
 public:
  PairForcefit(class LAMMPS *);
  ~PairForcefit() override;
  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  void *extract_peratom(const char *, int &) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;
  double memory_usage() override;

 private:
  std::string model_path;
  long block_atoms;               // centre atoms per call of the engine
  int threads;                    // the engine's threads on each rank
  int trust_code;                 // 1: a model may import the Python code it names (user pair forms)
  _object *bridge;                // forcefit.interop.lammps_bridge.PairStyle
  double cutoff;                  // Å, the model's
  int members;                    // committee members (0: a single model)
  int has_grade;                  // 1: the model has an extrapolation grade (per-atom gamma)
  std::vector<long> type_number;  // atomic number of each LAMMPS type (index 1..ntypes; 0: not this style's)
  int nmax;                       // per-atom arrays' length
  double *forces_std, *energy_std, *extrapolation, *gamma;  // per atom, for fix pair / dumps
  double *member_forces;          // (nmax, 3 members): each member's force, summed over ranks by reverse comm

  // one call's buffers, reused
  std::vector<long> numbers, pair_i, pair_j;
  std::vector<double> vectors, energies, gradients, member_energies, member_gradients, outside, grades;

  void allocate();
  void grow_peratom();
  void load_model(const std::vector<std::string> &elements);
  void evaluate_block(int first, int last);
  void python_error(const char *where);
};

}    // namespace LAMMPS_NS

#endif
