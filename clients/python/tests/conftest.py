import os
import sys

# Importable without installing: clients/python on the path.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
