export default { template: '<section class="page"><h2>建设中</h2></section>' };
