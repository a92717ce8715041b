"""Model families, one module each. The registry imports every module here (pkgutil), so a module's
@register line is all it takes to add a model: no list to keep."""
