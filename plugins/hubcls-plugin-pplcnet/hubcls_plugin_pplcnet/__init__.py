"""hubcls-plugin-pplcnet: PP-LCNet backbones and a TrivialAugment augmenter for hubcls.

Nothing here is imported by ``import hubcls``; hubcls imports the entry points declared in
pyproject.toml on the first registry lookup.
"""
# the hubcls plugin API this package is written against (checked by hubcls.plugins)
HUBCLS_PLUGIN_API = 1

__version__ = "0.1.0"
