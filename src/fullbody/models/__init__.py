"""Models: the pose network (timm backbone + heatmap head), the loss and the LightningModule."""
