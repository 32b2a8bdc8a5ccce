"""How close the scratch model and Keras must agree (float32, CPU), in one place."""
FORWARD_RTOL = FORWARD_ATOL = 1e-5      # every layer's output, np.allclose sense (float32, CPU)
OUTPUT_ATOL = 1e-5                      # the network's output
GRAD_RTOL = 1e-4                        # each weight gradient, ||a - b|| / ||b||; lockstep's loss gap per step
WEIGHT_RTOL = 1e-4                      # lockstep: each weight after training, ||a - b|| / ||b||
