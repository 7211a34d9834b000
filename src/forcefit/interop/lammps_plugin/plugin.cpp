// Registers pair_style forcefit with LAMMPS (`plugin load forcefit.so`).
#include "lammpsplugin.h"
#include "pair_forcefit.h"

#ifndef FORCEFIT_LAMMPS_VERSION
#define FORCEFIT_LAMMPS_VERSION "unknown"  // LAMMPS warns when it differs from its own version
#endif

static void *create_pair(void *lmp)
{
  return new LAMMPS_NS::PairForcefit(static_cast<LAMMPS_NS::LAMMPS *>(lmp));
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  plugin.version = FORCEFIT_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "forcefit";
  plugin.info = "forcefit models (pair, linear, Behler-Parrinello, committees) through forcefit's engine";
  plugin.author = "forcefit";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &create_pair;
  plugin.handle = handle;
  (*(lammpsplugin_regfunc) regfunc)(&plugin, lmp);
}
