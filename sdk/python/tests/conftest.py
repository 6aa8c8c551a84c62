import os
import sys

# The package from this folder, with the system interpreter's grpcio and protobuf.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
