export const StaffAdmin = { template: '<section class="page"><h2>建设中</h2></section>' };
export const LawyerQueue = StaffAdmin;
export const Reconcile = StaffAdmin;
