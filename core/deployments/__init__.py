"""Deployments: configuration, the manager (control and data plane), the performance tracker."""

from core.deployments.config import DeploymentConfig
from core.deployments.info import DeploymentInfo, Revision
from core.deployments.manager import DeploymentManager, get_deployment_manager
from core.deployments.tracker import PerformanceMetrics, PerformanceTracker, SecondSample

__all__ = [
    "DeploymentConfig",
    "DeploymentInfo",
    "DeploymentManager",
    "PerformanceMetrics",
    "PerformanceTracker",
    "Revision",
    "SecondSample",
    "get_deployment_manager",
]
